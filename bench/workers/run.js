#!/usr/bin/env node
'use strict';
// `npm run bench:workers`: bundles bench/workers/main.ts and load.ts into dist/bench-workers/ and
// runs main, bounded (SIGTERM after 5 minutes: it stops the processes it started).
// Usage: node bench/workers/run.js [--devices N] [--in-flight N] [--warm-ms N] [--measure-ms N]
const { buildAndRun } = require('../build-run');

buildAndRun({ name: 'bench:workers', dir: 'workers', entries: ['main', 'load'], limitMs: 5 * 60 * 1000 });
