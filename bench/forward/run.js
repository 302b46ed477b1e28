#!/usr/bin/env node
'use strict';
// `npm run bench:forward`: bundles bench/forward/main.ts with esbuild into dist/bench-forward/ (as
// bench/run.js does for bench:peers: no per-file TypeScript loader in the measuring process), then
// runs it. The runner bounds every run, every row and itself; this bounds the runner once more,
// with SIGTERM, on which it stops the processes it started.
// Usage: node bench/forward/run.js [--help | runner args...]
const { buildAndRun } = require('../build-run');

buildAndRun({ name: 'bench:forward', dir: 'forward', entries: ['main'], limitMs: 60 * 60 * 1000 });
