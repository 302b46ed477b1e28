#!/usr/bin/env node
'use strict';
// The project's test command: type-check, then every uvu test file under test/ (TypeScript through
// the tsx/cjs loader, which also works on Node 18). Ends with one line "N passed, N failed" and exits
// non-zero on any failure. SOAK=1 raises the property-test seed counts (see test/*.property.test.ts).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const filter = process.argv[2];

let failed = 0;
let passed = 0;

if (!filter) {
  const tsc = spawnSync(bin('tsc'), ['--noEmit', '-p', '.'], { cwd: root, stdio: 'inherit' });
  if (tsc.status === 0) { passed++; console.log('typecheck: ok'); }
  else { failed++; console.log('typecheck: FAILED'); }
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
