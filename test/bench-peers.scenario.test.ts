/**
 * `npm run bench:peers` end to end with small counts: holdfast-tcp and raw-tcp through every workload
 * but the slow ones (5% kills instead of 2%, so a short run sees several), into a temporary directory. The harness must finish by itself, write its files,
 * end with the one JSON line the issue names, and its counts must add up: under connection kills
 * holdfast delivers everything exactly once, and every system's offered messages are delivered, lost
 * or not sent. The TLS rows run once too, briefly, beside one plain row: each prints its figures and
 * what it negotiated, the TLS cost section compares, and the run's certificate is gone afterwards.
 * The goal and TLS cost arithmetic (bench/report.ts) is checked on made-up results; speed never is.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goals, jsonLine, type SystemResult, tlsCost } from '../bench/report';

const ROOT = join(__dirname, '..');

function result(name: string, r: Partial<SystemResult>): SystemResult {
  return { name, settings: '', reconnects: true, scale: 1, counts: {}, windows: {}, trials: {}, seconds: {}, notes: [], ...r };
}

function chaos(delivered: number, lost: number, duplicated: number): SystemResult['chaos'] {
  return { messages: 100, taken: delivered + lost, delivered, not_sent: 100 - delivered - lost, lost, duplicated, reordered: 0, kills: 2, connections: 3, requests: 9, seconds: 1, c2s: {}, s2c: {} };
}

test('goals: ratios against the baseline of the same run, met or not, missing ones not met', () => {
  const rs = [
    result('holdfast-http', { c2s_msgs_per_s: 300, rtt_p50_ms: 0.5, chaos: chaos(100, 0, 0) }),
    result('eio-polling', { c2s_msgs_per_s: 200, rtt_p50_ms: 2 }),
    result('holdfast-tcp', { c2s_msgs_per_s: 79, s2c_msgs_per_s: 90, rtt_p50_ms: 0.15, chaos: chaos(99, 0, 1) }),
    result('raw-tcp', { c2s_msgs_per_s: 100, s2c_msgs_per_s: 100, rtt_p50_ms: 0.1 }),
  ];
  const g = goals(rs);
  const met = (what: string): boolean | undefined => g.find((x) => x.what.startsWith(what))?.met;
  assert.is(met('holdfast-http c2s'), true, '1.5 is enough');
  assert.is(met('holdfast-http RTT'), true, '0.25 is enough');
  assert.is(met('holdfast-tcp c2s'), false, '0.79 < 0.8');
  assert.is(met('holdfast-tcp s2c'), true);
  assert.is(met('holdfast-tcp RTT'), true, '1.5 is enough');
  assert.is(met('holdfast-http lost'), true);
  assert.is(met('holdfast-tcp lost'), false, 'one duplicate, one missing');
  const none = goals([result('holdfast-tcp', {})]);
  assert.ok(
    none.every((x) => !x.met),
    'nothing measured: nothing met',
  );
  const line = JSON.parse(jsonLine(rs));
  assert.equal(
    line.adapters.map((a: { name: string }) => a.name),
    ['holdfast-http', 'eio-polling', 'holdfast-tcp', 'raw-tcp'],
  );
  assert.is(line.adapters[3].bytes_per_msg, null, 'unmeasured is null, not a number');
});

test('TLS cost: each TLS row over its plain row of the same run; no plain row, no ratio', () => {
  const rs = [
    result('holdfast-tcp', { c2s_msgs_per_s: 1000, s2c_msgs_per_s: 800, rtt_p50_ms: 0.1, bytes_per_msg: 66 }),
    result('holdfast-tcp-tls', { plain: 'holdfast-tcp', negotiated: 'TLSv1.3 TLS_AES_256_GCM_SHA384', c2s_msgs_per_s: 710, s2c_msgs_per_s: 800, rtt_p50_ms: 0.15, bytes_per_msg: 90 }),
    result('ws-tls', { plain: 'ws', c2s_msgs_per_s: 500 }),
  ];
  const [h, w] = tlsCost(rs);
  assert.is(h.name, 'holdfast-tcp-tls');
  assert.is(h.plain_measured, true);
  assert.is(h.c2s_64, 0.71);
  assert.is(h.s2c_64, 1);
  assert.is(h.rtt_p50, 1.5, 'above 1: TLS takes longer');
  assert.is(h.bytes_per_msg, 1.36);
  assert.is(h.c2s_1k, null, 'not measured: null');
  assert.is(w.plain_measured, false);
  assert.is(w.c2s_64, null, 'no plain row: no ratio');
  const line = JSON.parse(jsonLine(rs));
  assert.equal(line.tls_cost, [h, w], 'the JSON line carries the TLS cost');
  assert.equal(line.adapters[1].tls, { plain: 'holdfast-tcp', negotiated: 'TLSv1.3 TLS_AES_256_GCM_SHA384' });
  assert.is(line.adapters[0].tls, null, 'a plain row');
});

test('a small run of holdfast-tcp and raw-tcp finishes by itself and its counts add up', () => {
  const out = mkdtempSync(join(tmpdir(), 'hf-peers-'));
  try {
    const args = [
      'bench/run.js',
      '--systems',
      'holdfast-tcp,raw-tcp',
      '--quick',
      '--skip',
      'sizes,idle',
      '--messages',
      '2000',
      '--rtt',
      '50',
      '--chaos-messages',
      '2000',
      '--kill-rate',
      '0.05',
      '--drain-ms',
      '3000',
      '--out',
      out,
    ];
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 240_000, killSignal: 'SIGKILL' });
    assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    assert.ok(existsSync(join(out, 'peers.json')) && existsSync(join(out, 'peers.md')), 'files written to --out');
    const lines = r.stdout.trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]);
    const byName = new Map<string, Record<string, number | null>>(last.adapters.map((a: { name: string }) => [a.name, a]));
    for (const name of ['holdfast-tcp', 'raw-tcp']) {
      const a = byName.get(name);
      assert.ok(a !== undefined, `${name} in the JSON line`);
      for (const k of ['c2s_msgs_per_s', 's2c_msgs_per_s', 'rtt_p50_ms', 'bytes_per_msg']) assert.ok((a[k] as number) > 0, `${name} ${k}: ${a[k]}`);
      assert.ok((a.rtt_p99_ms as number) >= (a.rtt_p50_ms as number), `${name}: p99 >= p50`);
      assert.is(a.offered, 4000, `${name}: 2000 each way offered`);
      assert.is((a.delivered as number) + (a.lost as number) + (a.not_sent as number), a.offered, `${name}: delivered + lost + not sent = offered`);
    }
    const h = byName.get('holdfast-tcp')!;
    assert.ok((h.kills as number) > 0, `the proxy killed holdfast's connections (${h.kills} kills)`);
    assert.is([h.delivered, h.lost, h.duplicated].join(' '), '4000 0 0', 'holdfast under kills: everything, once');
    // 64 B payloads plus a 5-byte length-prefixed frame each at least, on raw TCP.
    assert.ok((byName.get('raw-tcp')!.bytes_per_msg as number) >= 68, 'raw-tcp bytes per message');
    const doc = JSON.parse(readFileSync(join(out, 'peers.json'), 'utf8'));
    assert.ok(Array.isArray(doc.goals) && doc.goals.length >= 5, 'goals in peers.json');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a quick run of the TLS rows prints each of them and the TLS cost beside a plain row, and removes its certificate', () => {
  const out = mkdtempSync(join(tmpdir(), 'hf-peers-tls-'));
  // The run's temporary directory, to see the certificate's directory go at the end.
  const tmp = join(out, 'tmp');
  const tlsRows = ['holdfast-tcp-tls', 'holdfast-http-tls', 'raw-tcp-tls', 'ws-tls', 'mqtt-qos0-tls', 'mqtt-qos1-tls'];
  try {
    mkdirSync(tmp);
    const args = ['bench/run.js', '--systems', ['holdfast-tcp', ...tlsRows].join(','), '--quick', '--skip', 'sizes,idle,chaos', '--messages', '1000', '--rtt', '50', '--out', out];
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 240_000, killSignal: 'SIGKILL', env: { ...process.env, TMPDIR: tmp } });
    assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    const lines = r.stdout.trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]);
    const byName = new Map<string, Record<string, unknown>>(last.adapters.map((a: { name: string }) => [a.name, a]));
    for (const name of tlsRows) {
      const a = byName.get(name);
      assert.ok(a !== undefined, `${name} in the JSON line`);
      for (const k of ['c2s_msgs_per_s', 's2c_msgs_per_s', 'rtt_p50_ms', 'bytes_per_msg']) assert.ok((a[k] as number) > 0, `${name} ${k}: ${a[k]}`);
      assert.match((a.tls as { negotiated: string }).negotiated, /^TLSv1\.3 /, `${name} negotiated TLS 1.3`);
      assert.ok(
        lines.some((l) => l.startsWith(`| ${name} | `)),
        `${name} has a row in the table`,
      );
      assert.ok(
        lines.some((l) => l.startsWith(`| ${name} (`)),
        `${name} has a row in the TLS cost table`,
      );
    }
    assert.is(byName.get('holdfast-tcp')!.tls, null);
    const cost = last.tls_cost.find((x: { name: string }) => x.name === 'holdfast-tcp-tls');
    assert.ok(cost.plain_measured && cost.c2s_64 > 0 && cost.rtt_p50 > 0, `holdfast-tcp-tls against holdfast-tcp: ${JSON.stringify(cost)}`);
    assert.is(last.tls_cost.find((x: { name: string }) => x.name === 'ws-tls').plain_measured, false, 'ws was not run');
    assert.match(r.stdout, /TLS cost: holdfast-tcp 64 B c2s \d+\.\d\d× plain/);
    assert.match(r.stdout, /same settings: Node's TLS defaults/);
    assert.equal(
      readdirSync(tmp).filter((f) => f.startsWith('holdfast-bench-tls-')),
      [],
      'the certificate directory is removed',
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
