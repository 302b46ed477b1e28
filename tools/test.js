#!/usr/bin/env node
'use strict';
// The project's test command: the linter and the formatter's check (Biome), two type-checks (the
// whole project, and firmware/ alone without Node's types), then every uvu test file under test/
// (TypeScript through the tsx/cjs loader, which also works on Node 18). Each check counts as one
// test. Ends with one line "N passed, N failed" and exits non-zero on any failure. SOAK=1 raises the
// property-test seed counts (see test/*.property.test.ts). An argument narrows the uvu files by
// name and skips the checks.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const filter = process.argv[2];

let failed = 0;
let passed = 0;

/** Runs one whole-tree check; it passes when the command exits 0. */
function check(name, cmd, args) {
  const r = spawnSync(bin(cmd), args, { cwd: root, stdio: 'inherit' });
  if (r.status === 0) {
    passed++;
    console.log(`${name}: ok`);
  } else {
    failed++;
    console.log(`${name}: FAILED${r.error ? ` (${r.error.message})` : ''}`);
  }
}

if (!filter) {
  check('lint and format (biome ci)', 'biome', ['ci', '--reporter=summary', '.']);
  check('typecheck', 'tsc', ['--noEmit', '-p', '.']);
  check('typecheck firmware/ without Node types', 'tsc', ['--noEmit', '-p', 'tsconfig.firmware.json']);
}

// Only *.test.ts files are tests (test/support/ holds helpers); an argument narrows them by name.
const args = ['-r', 'tsx/cjs', 'test', filter ? `${filter}[^/]*\\.test\\.ts$` : '\\.test\\.ts$'];
const run = spawnSync(bin('uvu'), args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28, env: { ...process.env, NO_COLOR: '1' } });
process.stdout.write(run.stdout || '');
const total = /Total:\s+(\d+)/.exec(run.stdout || '');
const ok = /Passed:\s+(\d+)/.exec(run.stdout || '');
if (!total || !ok) {
  console.log('uvu: no summary (exit ' + run.status + ')');
  failed++;
} else {
  passed += Number(ok[1]);
  failed += Number(total[1]) - Number(ok[1]);
  if (run.status !== 0 && Number(total[1]) === Number(ok[1])) failed++;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
