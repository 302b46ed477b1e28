#!/usr/bin/env node
'use strict';
// Runs a benchmark as the code ships: bundled by esbuild into one file (as the device bundle is), then
// run by node with --expose-gc. Loading the TypeScript through a per-file loader instead measures the
// loader's module glue (every cross-module call through an export getter), not holdfast.
// Usage: node tools/bench/run.js <name> [args...]   (tools/bench/<name>.ts)
const { buildSync } = require('esbuild');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const name = process.argv[2];
if (!name) {
  console.error('usage: node tools/bench/run.js <name> [args...]');
  process.exit(2);
}
const outfile = path.join(root, 'dist', 'bench', `${name}.js`);
buildSync({
  entryPoints: [path.join(root, 'tools', 'bench', `${name}.ts`)],
  bundle: true,
  platform: 'node',
  target: 'node18',
  outfile,
  logLevel: 'warning',
  alias: { 'cbor-extract': path.join(root, 'tools', 'empty.js') },
});
const r = spawnSync(process.execPath, ['--expose-gc', outfile, ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
