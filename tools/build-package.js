#!/usr/bin/env node
'use strict';
// The importable package (`npm pack` runs this as `prepack`): what `require('holdfast')` and
// `import ... from 'holdfast'` load, built from index.ts, the curated public surface.
//
//   dist/pkg/index.js          CommonJS for Node 18, one file (esbuild, bundle: true, packages external)
//   dist/pkg/index.mjs         ESM: a wrapper that re-exports index.js by name (and as default)
//   dist/pkg/types/**/*.d.ts   declarations for index.ts and every file it reaches (tsc, tools/tsconfig.package.json)
//
// One CommonJS build with an ESM wrapper rather than two builds: two builds would be two copies of
// the code in one process when one part of an application requires holdfast and another imports it,
// and then `instanceof HfError` or a Gateway made by one copy fails in the other (the dual-package
// hazard). With the wrapper there is one copy, whichever way it is loaded.
//
// The host target is built in (`#platform` -> targets/host/platform.ts, as tsconfig's `paths` says).
// The package has no run-time dependencies: the build fails if the bundle would import anything but
// Node's own modules.
//
// Usage: node tools/build-package.js [--quiet]
const { buildSync } = require('esbuild');
const { spawnSync } = require('node:child_process');
const { builtinModules } = require('node:module');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dest = path.join(root, 'dist', 'pkg');
// Built beside it and moved into place at the end, so a `npm pack` running at the same time (another
// `npm test` in this checkout) never packs a half-written dist/pkg.
const out = path.join(root, 'dist', `.pkg-${process.pid}`);
const quiet = process.argv.includes('--quiet');

function fail(msg) {
  fs.rmSync(out, { recursive: true, force: true });
  console.error(`build-package: ${msg}`);
  process.exit(1);
}

/** dist/pkg/index.js; returns the modules it imports at run time. */
function bundle() {
  const r = buildSync({
    entryPoints: [path.join(root, 'index.ts')],
    bundle: true,
    packages: 'external',
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    outfile: path.join(out, 'index.js'),
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    alias: {
      '#platform': path.join(root, 'targets', 'host', 'platform.ts'),
      'cbor-extract': path.join(root, 'tools', 'empty.js'),
    },
  });
  const imports = new Set();
  for (const o of Object.values(r.metafile.outputs)) for (const i of o.imports) if (i.external) imports.add(i.path);
  return [...imports];
}

/** dist/pkg/index.mjs: the names index.js exports, re-exported (no second copy of the code). */
function esmWrapper() {
  const names = Object.keys(require(path.join(out, 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
  if (names.length === 0) fail('dist/pkg/index.js exports nothing');
  const lines = [
    '// ESM entry of holdfast: the CommonJS build re-exported, so both ways load one copy of the code.',
    "import holdfast from './index.js';",
    '',
    `export const { ${names.join(', ')} } = holdfast;`,
    'export default holdfast;',
    '',
  ];
  fs.writeFileSync(path.join(out, 'index.mjs'), lines.join('\n'));
  return names;
}

/** dist/pkg/types: declarations for every file index.ts reaches. */
function declarations() {
  const r = spawnSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', path.join(root, 'tools', 'tsconfig.package.json'), '--outDir', path.join(out, 'types')], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) fail(`tsc (declarations) failed:\n${r.stdout}${r.stderr}`);
  const index = path.join(out, 'types', 'index.d.ts');
  if (!fs.existsSync(index)) fail(`tsc wrote no ${path.relative(root, index)}`);
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(path.join(out, 'types'));
  // The target is chosen at build time: a declaration that still names `#platform` would not resolve
  // in a user's project.
  for (const f of files) if (/from '#platform'/.test(fs.readFileSync(f, 'utf8'))) fail(`${path.relative(root, f)} imports #platform`);
  return files.length;
}

function main() {
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const builtins = new Set(builtinModules);
  const imports = bundle();
  // The cluster's NATS clients are optional peer dependencies, imported only when a gateway joins a
  // cluster (a dynamic import()): a package without them serves everything else.
  const meta = require(path.join(root, 'package.json')).peerDependenciesMeta ?? {};
  const optional = new Set(Object.keys(meta).filter((k) => meta[k].optional === true));
  const foreign = imports.filter((i) => !i.startsWith('node:') && !builtins.has(i) && !optional.has(i));
  if (foreign.length > 0) fail(`the package would need ${foreign.join(', ')} at run time; it must need nothing but Node (and the optional NATS clients, for a cluster)`);
  const names = esmWrapper();
  const dts = declarations();
  const old = path.join(root, 'dist', `.pkg-old-${process.pid}`);
  if (fs.existsSync(dest)) fs.renameSync(dest, old);
  fs.renameSync(out, dest);
  fs.rmSync(old, { recursive: true, force: true });
  if (!quiet) {
    const kib = (f) => (fs.statSync(path.join(dest, f)).size / 1024).toFixed(1);
    console.log(`dist/pkg/index.js: ${kib('index.js')} KiB (CommonJS, node18), index.mjs (ESM wrapper), ${dts} declaration files in dist/pkg/types`);
    console.log(`exports: ${names.join(', ')}`);
  }
}

main();
