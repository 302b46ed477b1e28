/**
 * tools/cli/ctl-format.ts: columns as wide as their widest cell, ages in a few characters, results in
 * a few words (info, exec with base64 output, the others), a target's line with its error code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Target } from '../targets/host/gateway/manage/jobs-store';
import type { DeviceView } from '../targets/host/gateway/manage/service';
import { ago, devicesTable, resultSummary, table, targetLine } from '../tools/cli/ctl-format';

test('table: each column as wide as its widest cell plus two; the last unpadded, no trailing spaces', () => {
  assert.is(
    table(
      ['ID', 'X'],
      [
        ['pi-10', ''],
        ['p', 'long'],
      ],
    ),
    'ID     X\npi-10\np      long\n',
  );
});

test('ago: seconds below 2 min, minutes below 2 h, hours below 2 days, then the date; never', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  assert.is(ago(null, now), 'never');
  assert.is(ago(now + 5000, now), '0 s ago', 'a clock a little ahead is not the future');
  assert.is(ago(now - 119_000, now), '119 s ago');
  assert.is(ago(now - 120_000, now), '2 min ago');
  assert.is(ago(now - 7_199_000, now), '120 min ago');
  assert.is(ago(now - 7_200_000, now), '2 h ago');
  assert.is(ago(now - 172_800_000, now), '2026-11-30');
});

test('devicesTable: online, transport, labels, the reported temperature; "-" where there is none', () => {
  const d = (id: string, more: Partial<DeviceView>): DeviceView => ({ id, labels: {}, info: {}, firstSeen: null, lastSeen: null, online: false, transport: null, managed: true, ...more });
  const now = 1_000_000;
  const text = devicesTable(
    [
      d('pi-1', { online: true, transport: 'tcp', lastSeen: now - 3000, labels: { class: 'pi4', site: 'berlin' }, info: { cpu_temperature_c: 47.25 } }),
      d('pi-2', { online: true, transport: 'http', managed: false, info: { cpu_temperature_c: { error: 'HF_ERR_UNSUPPORTED', message: 'no thermal zone' } } }),
      d('x-1', {}),
    ],
    now,
  );
  assert.equal(text.trimEnd().split('\n'), [
    'ID    ONLINE           TRANSPORT  LAST SEEN  LABELS                 TEMP',
    'pi-1  yes              tcp        3 s ago    class=pi4,site=berlin  47.3 °C',
    'pi-2  yes (unmanaged)  http       never      -                      -',
    'x-1   no               -          never      -                      -',
  ]);
});

test('resultSummary: info and exec in a few words; others as compact JSON cut at 120 characters', () => {
  assert.is(resultSummary('info', { model: 'Raspberry Pi 4', cpu_temperature_c: 51.04, uptime_s: 3600, load: [0.5, 0.25, 0.125] }), 'Raspberry Pi 4, 51.0 °C, up 60 min, load 0.50 0.25 0.13');
  assert.is(resultSummary('exec', { exitCode: 0, signal: null, stdout: Buffer.from('a\nb\n').toString('base64'), truncated: true }), 'exit 0: a | b (truncated)');
  assert.is(resultSummary('exec', { exitCode: null, signal: 'SIGKILL', stdout: '' }), 'exit SIGKILL');
  assert.is(resultSummary('file.get', { data: Buffer.alloc(10).toString('base64') }), '10 bytes');
  assert.is(resultSummary('config.get', { a: 1 }), '{"a":1}');
  assert.is(resultSummary('config.get', { a: 'x'.repeat(200) }).length, 120);
  assert.is(resultSummary('gpio.write', null), '');
});

test('targetLine: the error code and message on one line, else the summary', () => {
  const t = (more: Partial<Target>): Target => ({ jobId: 'j', deviceId: 'pi-1', state: 'succeeded', result: null, errorCode: null, errorMessage: null, sends: 1, updatedAt: 0, ...more }) as Target;
  assert.is(targetLine('exec', t({ state: 'failed', errorCode: 'HF_ERR_NOT_ALLOWED', errorMessage: 'not on\nthe allow-list' }), 6), 'pi-1    failed     HF_ERR_NOT_ALLOWED not on the allow-list');
  assert.is(targetLine('gpio.read', t({ result: { value: 1 } }), 4), 'pi-1  succeeded  value 1');
  assert.is(targetLine('info', t({ state: 'queued' }), 4), 'pi-1  queued');
});

test.run();
