/**
 * `npm run bench:cluster` end to end in its smallest form (6 devices, short rounds): it must finish
 * by itself, print its table and end with the JSON line, with nothing lost or duplicated by the kill
 * or the drain.
 * Speed is never checked.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { natsAvailable } from './support/nats';

const ROOT = join(__dirname, '..');

test('a tiny run prints the table and ends with the JSON line', () => {
  if (!natsAvailable('bench-cluster.scenario')) return;
  const r = spawnSync(process.execPath, ['bench/cluster/run.js', '--devices', '6', '--drain-devices', '30', '--warm-ms', '300', '--measure-ms', '800'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
    killSignal: 'SIGKILL',
  });
  assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  for (const row of ['alone', 'nodes-1', 'nodes-2', 'nodes-3', 'relay-3', 'kill-3', 'drain-3']) assert.match(r.stdout, new RegExp(`^${row} +\\d+ +\\d+`, 'm'), `a row for ${row}`);
  const lines = r.stdout.trim().split('\n');
  const last = JSON.parse(lines[lines.length - 1]);
  assert.equal(
    last.nodes.map((n: { n: number }) => n.n),
    [1, 2, 3],
  );
  for (const n of last.nodes) assert.ok(n.msgs_per_s > 0 && n.rtt_p50_ms > 0, JSON.stringify(n));
  assert.ok(last.relay_overhead > 0);
  assert.is(last.kill_lost, 0);
  assert.is(last.kill_duplicated, 0);
  assert.is(last.drain_lost, 0);
  assert.is(last.drain_duplicated, 0);
  assert.ok(last.drain_moved > 0 && last.drain_1000_s > 0 && last.handoff_p99_ms >= 0, JSON.stringify(last));
  assert.ok('locality_gain' in last);
});

test.run();
