/**
 * The package as a user gets it: `npm pack` (whose prepack builds dist/pkg with
 * tools/build-package.js), `npm install <tarball>` in a fresh project (offline: the package has no
 * dependencies), then README's "API in ten lines", taken from README.md itself, run three ways: as
 * CommonJS (`require('holdfast')`), as ESM (`import`), and as TypeScript type-checked by the repo's
 * tsc against the shipped declarations and then run. Each run is a gateway and a device on loopback
 * that echo one message and close; the process must end by itself (nothing left open) within its
 * time bound. The README's fixed ports are replaced by free ones.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, freePort } from './support/host';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-package-'));
const packDir = path.join(tmp, 'pack');
const project = path.join(tmp, 'project');
const cache = path.join(tmp, 'npm-cache');
const running = new Set<number>();
test.after(() => {
  for (const pid of running) kill(pid);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** What index.ts exports as values (its types are checked by the TypeScript run). */
const SURFACE = [
  'DeviceChannel',
  'ErrorCode',
  'GATEWAY_LINK_DEFAULTS',
  'Gateway',
  'GatewayChannel',
  'HfError',
  'LINK_DEFAULTS',
  'Mux',
  'MuxStream',
  'channelStream',
  'connect',
  'createLog',
  'forwardPorts',
  'isHfError',
  'loopbackPair',
  'serveForwards',
  'silentLog',
  'TCP_LIMIT_DEFAULTS',
];
/** Its type-only exports. */
const TYPES = [
  'GatewayOptions',
  'GatewayEvents',
  'GatewayTlsOptions',
  'GatewayChannel',
  'DeviceKeys',
  'HttpListener',
  'TcpListener',
  'TcpLimits',
  'MetricsListener',
  'DeviceOptions',
  'DeviceChannel',
  'DeviceChannelEvents',
  'DeviceTlsOptions',
  'DeviceStats',
  'Channel',
  'ChannelEvents',
  'ChannelStreamOptions',
  'MuxOptions',
  'ForwardSpec',
  'ForwardOptions',
  'ServeOptions',
  'PortForwarder',
  'ForwardServer',
  'LoopbackPair',
  'ErrorCodeValue',
  'LinkOptions',
  'AckAfter',
  'LadderOptions',
  'Log',
  'LogOptions',
  'LogLevel',
  'LogFormat',
];

function kill(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Runs a command in its own process group with npm's own variables taken out of the environment
 * (under `npm test` they would point the child npm at this checkout); after `ms` the whole group is
 * killed and the result says so.
 */
function run(cmd: string, args: string[], cwd: string, ms: number): Promise<{ code: number | null; stdout: string; out: string; late: boolean }> {
  const env: Record<string, string | undefined> = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (/^npm_(config_(?!update_notifier|fund|audit)|lifecycle_|package_|execpath|node_execpath|command)/i.test(k)) delete env[k];
  const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid as number;
  running.add(pid);
  let stdout = '';
  let out = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    out += d;
  });
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      kill(pid);
    }, ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(pid);
      kill(pid); // anything it left behind in its group
      resolve({ code, stdout, out, late });
    });
  });
}

/** README's "API in ten lines" code block, with its ports replaced by `http` and `tcp`. */
function readmeExample(http: number, tcp: number): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /^## The API in ten lines\n[\s\S]*?^```ts\n([\s\S]*?)^```$/m.exec(readme);
  assert.ok(m, 'README.md has a ```ts block under "## The API in ten lines"');
  const code = m[1];
  assert.ok(code.includes("import { Gateway, connect, channelStream } from 'holdfast';"), 'the example imports from holdfast');
  assert.ok(code.includes('127.0.0.1:8080') && code.includes('127.0.0.1:8081'), 'the example uses 127.0.0.1:8080 (http) and 127.0.0.1:8081 (tcp)');
  return code.replaceAll('127.0.0.1:8080', `127.0.0.1:${http}`).replaceAll('127.0.0.1:8081', `127.0.0.1:${tcp}`);
}

/** The example as CommonJS: the import becomes a require, the rest runs in an async function. */
function asCommonJs(code: string): string {
  const lines = code.split('\n');
  const at = lines.findIndex((l) => /^import \{[^}]*\} from 'holdfast';$/.test(l));
  const names = /\{([^}]*)\}/.exec(lines[at])![1];
  const body = lines.filter((_, i) => i !== at).join('\n');
  return `'use strict';\nconst {${names}} = require('holdfast');\n(async () => {\n${body}\n})().catch((e) => {\n  console.error(e);\n  process.exitCode = 1;\n});\n`;
}

/**
 * Runs one variant of the example (after `build`, if given, turned the file into the .js to run): it
 * must echo, close cleanly and exit 0 by itself.
 */
async function runExample(file: string, make: (code: string) => string, build?: () => Promise<void>): Promise<void> {
  const code = make(readmeExample(await freePort(), await freePort()));
  fs.writeFileSync(path.join(project, file), code);
  if (build) await build();
  const r = await run(process.execPath, [file.replace(/\.ts$/, '.js')], project, 20_000);
  assert.not.ok(r.late, `${file} did not exit within 20 s (something left open?):\n${r.out}`);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /^back: hello$/m, 'the message came back');
  assert.match(r.out, /^closed cleanly$/m, 'and both ends closed cleanly');
}

let tarball = '';

test('npm pack: prepack builds dist/pkg; the tarball holds it, README.md and package.json', async () => {
  fs.mkdirSync(packDir);
  const r = await run('npm', ['pack', '--json', '--pack-destination', packDir, '--cache', cache], ROOT, 60_000);
  assert.is(r.code, 0, r.out);
  const info = JSON.parse(r.stdout.slice(r.stdout.search(/^\[/m)))[0];
  tarball = path.join(packDir, info.filename);
  assert.ok(fs.existsSync(tarball), tarball);
  const files: string[] = info.files.map((f: { path: string }) => f.path).sort();
  assert.equal(
    files.filter((f) => !f.startsWith('dist/pkg/')),
    ['README.md', 'package.json'],
  );
  for (const f of ['dist/pkg/index.js', 'dist/pkg/index.mjs', 'dist/pkg/types/index.d.ts']) assert.ok(files.includes(f), `${f} is in the tarball`);
  assert.not.ok(
    files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
    'no TypeScript sources',
  );
});

test('npm install <tarball> in a fresh project, offline: holdfast and nothing else', async () => {
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'holdfast-user', version: '1.0.0', private: true, type: 'module' }, null, 2));
  const r = await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--cache', cache, tarball], project, 60_000);
  assert.is(r.code, 0, r.out);
  assert.equal(
    fs.readdirSync(path.join(project, 'node_modules')).filter((n) => !n.startsWith('.')),
    ['holdfast'],
    'no dependencies came with it',
  );
});

test("README's ten lines as CommonJS: require('holdfast')", () => runExample('readme.cjs', asCommonJs));

test("README's ten lines as ESM: import from 'holdfast'", () => runExample('readme.mjs', (code) => code));

test("README's ten lines as TypeScript: type-checked against the package's declarations, then run", async () => {
  // What a TypeScript user has: @types/node installed (here: the checkout's, linked in).
  fs.mkdirSync(path.join(project, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(project, 'node_modules', '@types', 'node'), 'dir');
  // Every type the package exports resolves (type-checked, never run).
  fs.writeFileSync(path.join(project, 'surface.ts'), `import type { ${TYPES.join(', ')} } from 'holdfast';\nexport type Surface = [${TYPES.join(', ')}];\n`);
  const tsconfig = { compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, types: ['node'], skipLibCheck: false }, files: ['readme.ts', 'surface.ts'] };
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  await runExample(
    'readme.ts',
    (code) => code,
    async () => {
      const r = await run(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', '.'], project, 30_000);
      assert.is(r.code, 0, `tsc in the user's project:\n${r.out}`);
    },
  );
});

test('require and import give the same objects (one copy of the code), and the surface is what index.ts names', async () => {
  const probe = [
    "import { createRequire } from 'node:module';",
    "import * as esm from 'holdfast';",
    "import def from 'holdfast';",
    "const cjs = createRequire(import.meta.url)('holdfast');",
    "const names = Object.keys(esm).filter((n) => n !== 'default').sort();",
    'console.log(JSON.stringify({ names, cjs: Object.keys(cjs).sort(), same: names.every((n) => esm[n] === cjs[n]), def: def === cjs }));',
  ].join('\n');
  fs.writeFileSync(path.join(project, 'probe.mjs'), probe);
  const r = await run(process.execPath, ['probe.mjs'], project, 20_000);
  assert.is(r.code, 0, r.out);
  const p = JSON.parse(r.stdout);
  assert.equal(p.names, [...SURFACE].sort());
  assert.equal(p.cjs, [...SURFACE].sort());
  assert.ok(p.same, 'every export is the same object both ways');
  assert.ok(p.def, "the default import is require('holdfast')");
});

test.run();
