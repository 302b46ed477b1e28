#!/usr/bin/env node
'use strict';
// `npm run bench:manage`: bundles bench/manage/main.ts with esbuild into dist/bench-manage/ (as
// bench/run.js does for bench:peers: no per-file TypeScript loader in the measuring process), then
// runs it. The runner bounds every phase and itself; this bounds the runner once more,
// with SIGTERM, on which it stops the processes it started.
// Usage: node bench/manage/run.js [--help | runner args...]
const { buildAndRun } = require('../build-run');

buildAndRun({ name: 'bench:manage', dir: 'manage', entries: ['main', 'gateway', 'devices'], limitMs: 20 * 60 * 1000 });
