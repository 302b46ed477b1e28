#!/usr/bin/env node
'use strict';
// `npm run bench:cluster`: bundles bench/cluster/main.ts and load.ts into dist/bench-cluster/ and runs
// main, bounded (SIGTERM after 10 minutes: it stops the processes it started).
// Usage: node bench/cluster/run.js [--devices N] [--in-flight N] [--warm-ms N] [--measure-ms N]
const { buildAndRun } = require('../build-run');

buildAndRun({ name: 'bench:cluster', dir: 'cluster', entries: ['main', 'load', 'forward-load'], limitMs: 10 * 60 * 1000 });
