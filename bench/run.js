#!/usr/bin/env node
'use strict';
// `npm run bench:peers`: bundles the runner and the server and client processes with esbuild into
// dist/bench-peers/ (holdfast runs as it ships, as tools/bench/run.js does; a per-file TypeScript
// loader would make every cross-module call slower), then runs the runner. The peers (ws, engine.io,
// mqtt, aedes) stay external: they run from node_modules as their users run them.
// Usage: node bench/run.js [runner args...]   (--help lists them)
const { buildSync } = require('esbuild');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outdir = path.join(root, 'dist', 'bench-peers');
buildSync({
  entryPoints: ['runner', 'server', 'client'].map((n) => path.join(root, 'bench', `${n}.ts`)),
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  outdir,
  packages: 'external',
  logLevel: 'warning',
  alias: { 'cbor-extract': path.join(root, 'tools', 'empty.js') },
  // tools/chaos-proxy.ts runs its CLI when it is the main module, which in a bundle it would be.
  define: { 'require.main': 'undefined' },
});
// The whole run stops by itself: the runner bounds every step; this bounds the runner.
const LIMIT_MS = 20 * 60 * 1000;
const r = spawnSync(process.execPath, [path.join(outdir, 'runner.js'), ...process.argv.slice(2)], { stdio: 'inherit', timeout: LIMIT_MS, killSignal: 'SIGKILL' });
if (r.error) console.error(`bench:peers: ${r.error.message}`);
process.exit(r.status === null ? 1 : r.status);
