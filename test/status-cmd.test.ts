/**
 * `holdfast status`: reading a device's status file (missing, unreadable, garbled: HF_ERR_STATE), the
 * plain-words rendering, and its flags.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ago, type DeviceStatus, describeStatus, readStatus, statusCommand, statusFileIn } from '../tools/cli/status-cmd';
import { failure } from './support/errors';
import { Cleanup, tmpDir } from './support/host';

const NOW = Date.parse('2026-12-02T10:00:00.000Z');

const STATUS: DeviceStatus = {
  id: 'pi-1',
  pid: 4242,
  state: 'open',
  session: '3fa2c1d0aa55aa55aa55aa55aa55aa55',
  transport: 'tcp',
  since: '2026-12-02T09:55:00.000Z',
  updated: '2026-12-02T09:59:59.000Z',
  uptimeS: 600,
  lastError: { code: 'HF_ERR_CONNECT', message: 'gateway 127.0.0.1:9: ECONNREFUSED', at: '2026-12-02T09:54:00.000Z' },
  counters: { bundlesIn: 7, bundlesOut: 9, messagesIn: 20, messagesOut: 21, bytesIn: 1000, bytesOut: 1100, retransmits: 1, duplicatesIn: 2, requestsSent: 5, requestsFailed: 3, reconnects: 1 },
  memory: { rss: 48 * 1048576, heapUsed: 9.5 * 1048576 },
};

test('ago: seconds, minutes, hours, days', () => {
  assert.is(ago(0), '0 s');
  assert.is(ago(-5), '0 s');
  assert.is(ago(119_000), '119 s');
  assert.is(ago(300_000), '5 min');
  assert.is(ago(3 * 3600_000), '3 h');
  assert.is(ago(5 * 86400_000), '5 d');
});

test('describeStatus: the state, the session, the last error and the counters in plain words', () => {
  const text = describeStatus(STATUS, '/var/lib/holdfast/status.json', NOW - 1000, NOW);
  assert.is(
    text,
    [
      'device pi-1 (pid 4242): session open on tcp, since 5 min ago',
      'session: 3fa2c1d0aa55aa55aa55aa55aa55aa55',
      'last error: HF_ERR_CONNECT: gateway 127.0.0.1:9: ECONNREFUSED (6 min ago)',
      'messages: 20 in, 21 out (1 sent again, 2 duplicates dropped)',
      'payload bytes: 1000 in, 1100 out; bundles: 7 in, 9 out',
      'http requests: 5 sent, 3 failed; new sessions after a failure: 1',
      'memory: 48.0 MiB resident, 9.5 MiB heap; up 10 min',
      'status file /var/lib/holdfast/status.json, written 1 s ago',
      '',
    ].join('\n'),
  );
  const older = describeStatus({ ...STATUS, state: 'reconnecting', session: null, lastError: null, counters: undefined, memory: undefined }, 'f', NOW, NOW);
  assert.match(older, /^device pi-1 \(pid 4242\): reconnecting, since 5 min ago\nsession: none\nlast error: none\nmessages: 0 in, 0 out/);
});

test('readStatus: a missing, unreadable, garbled or foreign file is HF_ERR_STATE naming it', () => {
  const c = new Cleanup();
  try {
    const dir = tmpDir(c);
    const f = path.join(dir, 'status.json');
    let e = failure(() => readStatus(f));
    assert.is(e.code, 'HF_ERR_STATE');
    assert.match(e.message, `no status file ${f}`);
    fs.writeFileSync(f, '{"id": "pi-1", "sta');
    e = failure(() => readStatus(f));
    assert.is(e.code, 'HF_ERR_STATE');
    assert.match(e.message, 'is not JSON');
    fs.writeFileSync(f, '[1, 2]');
    assert.is(failure(() => readStatus(f)).code, 'HF_ERR_STATE');
    fs.writeFileSync(f, '{"hello": "world"}');
    assert.match(failure(() => readStatus(f)).message, "is not a device's status");
    e = failure(() => readStatus(dir)); // a directory: EISDIR
    assert.is(e.code, 'HF_ERR_STATE');
    assert.match(e.message, 'EISDIR');
    fs.writeFileSync(f, JSON.stringify(STATUS));
    assert.is(readStatus(f).status.id, 'pi-1');
    assert.is(statusFileIn(dir), f);
  } finally {
    void c.run();
  }
});

test('statusCommand: neither --status nor --state, or both, is HF_ERR_OPTION', async () => {
  const codeOf = async (argv: string[]): Promise<string> => {
    try {
      await statusCommand(argv);
      return 'no error';
    } catch (e) {
      return (e as { code: string }).code;
    }
  };
  assert.is(await codeOf([]), 'HF_ERR_OPTION');
  assert.is(await codeOf(['--status', 'a', '--state', 'b']), 'HF_ERR_OPTION');
  assert.is(await codeOf(['--status', '/nonexistent/holdfast/status.json']), 'HF_ERR_STATE');
});

test.run();
