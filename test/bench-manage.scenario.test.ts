/**
 * `npm run bench:manage` end to end in its smallest form (20 fleet devices, 10 latency rounds a
 * transport): it must finish by itself, print both tables and end with the JSON line whose figures
 * are numbers (the 10,000-device fan-out is null: it did not run). Speed is never checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { jsonLine, percentile, type ManageResult } from '../bench/manage/report';

const ROOT = join(__dirname, '..');

test('percentile: nearest rank', () => {
  assert.is(percentile([], 50), null);
  assert.is(percentile([3, 1, 2], 50), 2);
  assert.is(percentile([1, 2, 3, 4], 99), 4);
  assert.is(percentile([5], 0), 5);
});

test('the JSON line: the five figures first, null where a fan-out size did not run', () => {
  const r: ManageResult = {
    latency: [
      { transport: 'tcp', fleetOnline: 0, rounds: 2, event: [1, 3], confirmed: [2, 4], failures: 0 },
      { transport: 'http', fleetOnline: 0, rounds: 2, event: [2, 4], confirmed: [3, 5], failures: 0 },
      { transport: 'tcp', fleetOnline: 1000, rounds: 1, event: [9], confirmed: [10], failures: 0 },
    ],
    fanout: [{ devices: 1000, op: 'info', seconds: 0.5, final: 1000, notSucceeded: 0, events: 1000, streamDropped: false }],
    open: { asked: 1000, opened: 1000, seconds: 2, timedOut: false, concurrency: 200 },
    rssBaseMb: 60,
    rssMb: 160,
    rssPeakMb: 170,
    resident: { brkMb: 50, anonMb: 100, fileMb: 9, otherMb: 1 },
    sessions: 1002,
    devicesRssMb: 200,
  };
  const line = JSON.parse(jsonLine(r));
  assert.equal(Object.keys(line).slice(0, 5), ['info_p50_ms', 'info_p99_ms', 'fanout_1000_s', 'fanout_10000_s', 'gateway_rss_mb']);
  assert.is(line.info_p50_ms, 2);
  assert.is(line.info_p99_ms_tcp, 3);
  assert.is(line.info_p50_ms_fleet_online, 9, 'the rounds with the fleet online apart');
  assert.is(line.gateway_c_heap_mb, 50, "the C heap's share of the RSS");
  assert.is(line.fanout_1000_s, 0.5);
  assert.is(line.fanout_10000_s, null);
  assert.is(line.rss_per_session_kib, 102.4);
});

test('a tiny run prints the tables and ends with the JSON line of numbers', () => {
  const r = spawnSync(process.execPath, ['bench/manage/run.js', '--devices', '20', '--rounds', '10', '--warmup', '2', '--max-s', '60'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 90_000,
    killSignal: 'SIGKILL',
  });
  assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /\| click to result \(info, one device\) \| rounds \| p50 ms \| p99 ms \|/);
  assert.match(r.stdout, /\| tcp \| 10 \| \d+\.?\d* \| /);
  assert.match(r.stdout, /\| http \| 10 \| \d+\.?\d* \| /);
  assert.match(r.stdout, /\| tcp, 20 fleet sessions open \| 3 \| \d+\.?\d* \| /);
  assert.match(r.stdout, /\| info \| 20 \| \d+\.?\d* \| 20 \| 0 \|/);
  const lines = r.stdout.trim().split('\n');
  const last = JSON.parse(lines[lines.length - 1]);
  for (const k of ['info_p50_ms', 'info_p99_ms', 'info_p50_ms_fleet_online', 'gateway_rss_mb', 'info_p50_ms_tcp', 'info_p50_ms_http', 'sessions', 'open_s'])
    assert.type(last[k], 'number', `${k}: ${last[k]}`);
  assert.ok(last.info_p50_ms > 0 && last.gateway_rss_mb > 0);
  assert.is(last.sessions, 22);
  assert.is(last.fanout_10000_s, null);
  assert.is(last.fanout[0].devices, 20);
  assert.type(last.fanout[0].s, 'number');
});

test.run();
