#!/usr/bin/env node
'use strict';
// `npm run bench:manage`: bundles bench/manage/main.ts with esbuild into dist/bench-manage/ (as
// bench/run.js does for bench:peers: no per-file TypeScript loader in the measuring process), then
// runs it. The runner bounds every phase and itself; this bounds the runner once more,
// with SIGTERM, on which it stops the processes it started.
// Usage: node bench/manage/run.js [--help | runner args...]
const { buildSync } = require('esbuild');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const outdir = path.join(root, 'dist', 'bench-manage');
buildSync({
  entryPoints: ['main', 'gateway', 'devices'].map((n) => path.join(root, 'bench', 'manage', `${n}.ts`)),
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  outdir,
  packages: 'external',
  logLevel: 'warning',
});
const LIMIT_MS = 20 * 60 * 1000;
const r = spawnSync(process.execPath, [path.join(outdir, 'main.js'), ...process.argv.slice(2)], { stdio: 'inherit', timeout: LIMIT_MS, killSignal: 'SIGTERM' });
if (r.error) console.error(`bench:manage: ${r.error.message}`);
process.exit(r.status === null ? 1 : r.status);
