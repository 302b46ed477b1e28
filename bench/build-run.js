'use strict';
// What each bench's run.js does: bundle its entry points with esbuild into dist/NAME/ (holdfast runs
// as it ships; a per-file TypeScript loader in the measuring process would slow every call), then run
// the first entry with the bench's arguments, bounded by `limitMs` (then `killSignal`).
const { buildSync } = require('esbuild');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/**
 * @param {{ name: string, dir: string, entries: string[], limitMs: number, killSignal?: string, build?: object }} o
 *   name: the npm script (bench:…) for messages; dir: the folder of the entries under bench/ ('' for bench/);
 *   entries: file names without .ts, the first is run; build: more esbuild options.
 */
function buildAndRun(o) {
  const outdir = path.join(root, 'dist', o.name.replace(':', '-'));
  buildSync({
    entryPoints: o.entries.map((n) => path.join(root, 'bench', o.dir, `${n}.ts`)),
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    outdir,
    packages: 'external',
    logLevel: 'warning',
    ...(o.build ?? {}),
  });
  const r = spawnSync(process.execPath, [path.join(outdir, `${o.entries[0]}.js`), ...process.argv.slice(2)], { stdio: 'inherit', timeout: o.limitMs, killSignal: o.killSignal ?? 'SIGTERM' });
  if (r.error) console.error(`${o.name}: ${r.error.message}`);
  process.exit(r.status === null ? 1 : r.status);
}

module.exports = { buildAndRun, root };
