#!/usr/bin/env node
'use strict';
// `npm run bench:peers`: bundles the runner and the server and client processes with esbuild into
// dist/bench-peers/ (holdfast runs as it ships, as tools/bench/run.js does; a per-file TypeScript
// loader would make every cross-module call slower), then runs the runner. The peers (ws, engine.io,
// mqtt, aedes) stay external: they run from node_modules as their users run them.
// Usage: node bench/run.js [runner args...]   (--help lists them)
const path = require('node:path');
const { buildAndRun, root } = require('./build-run');

// The whole run stops by itself: the runner bounds every step; this bounds the runner.
buildAndRun({
  name: 'bench:peers',
  dir: '',
  entries: ['runner', 'server', 'client'],
  limitMs: 20 * 60 * 1000,
  killSignal: 'SIGKILL',
  build: {
    alias: { 'cbor-extract': path.join(root, 'tools', 'empty.js') },
    // tools/chaos-proxy.ts runs its CLI when it is the main module, which in a bundle it would be.
    define: { 'require.main': 'undefined' },
  },
});
