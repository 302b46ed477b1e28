/**
 * `npm run bench:failover` end to end in its smallest form (5 devices, 2 kills, one short round of
 * each capacity phase): it must finish by itself, print its table and end with the JSON line of
 * numbers, with nothing lost or duplicated. Speed is never checked.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = join(__dirname, '..');
const KEYS = ['kills', 'offered', 'delivered', 'lost', 'duplicated', 'out_of_order', 'takeover_p50_ms', 'takeover_p99_ms', 'throughput_ratio'];

test('a tiny run prints the table and ends with the JSON line of numbers', () => {
  const out = fs.mkdtempSync(join(os.tmpdir(), 'holdfast-bench-failover-test-'));
  try {
    const args = ['--kills', '2', '--devices', '5', '--rounds', '1', '--warm-ms', '200', '--measure-ms', '500', '--gap-ms', '300', '--out', out];
    const r = spawnSync(process.execPath, ['bench/failover/run.js', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
    assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    for (const phase of ['single-1', 'pair-1', 'kills']) assert.match(r.stdout, new RegExp(`^${phase} +\\d+ +\\|`, 'm'), `a row for ${phase}`);
    assert.match(r.stdout, /^takeover +promoted p50 [\d.]+ ms/m);
    const lines = r.stdout.trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]);
    assert.equal(Object.keys(last), KEYS);
    for (const k of KEYS) assert.ok(typeof last[k] === 'number' && Number.isFinite(last[k]), `${k} is a number: ${last[k]}`);
    assert.is(last.kills, 2);
    assert.ok(last.offered > 0);
    assert.is(last.delivered, last.offered);
    assert.is(last.lost, 0);
    assert.is(last.duplicated, 0);
    assert.equal(JSON.parse(fs.readFileSync(join(out, 'failover.json'), 'utf8')).summary, last);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test.run();
