#!/usr/bin/env node
'use strict';
// `npm run bench:failover`: bundles bench/failover/main.ts and node.ts (the gateway process) into
// dist/bench-failover/ and runs main, bounded (SIGTERM after 30 minutes: it stops the processes it
// started).
// Usage: node bench/failover/run.js [--kills N] [--devices N] [--in-flight N] [--warm-ms N] [--measure-ms N] [--gap-ms N] [--out DIR]
const { buildAndRun } = require('../build-run');

buildAndRun({ name: 'bench:failover', dir: 'failover', entries: ['main', 'node'], limitMs: 30 * 60 * 1000 });
