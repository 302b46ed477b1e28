/**
 * `holdfast device --state DIR` keeps DIR/status.json with the session and its counters, and
 * `holdfast status --state DIR` reads it back (plain words, or --json); a missing or garbled file is a
 * coded one-line error. The CLI gateway and device on loopback; children killed by PID.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cleanup, devicesFile, freePort, hashServer, holdfast, pushThrough, randomData, sha256, tmpDir } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'k-status-scenario';

/** Runs `holdfast status ARGS`; resolves with its exit status and output. */
async function status(c: Cleanup, args: string[]): Promise<{ code: number | null; out: string }> {
  const p = holdfast(['status', ...args], c);
  const code = await p.exited;
  return { code, out: p.log };
}

test('device --state DIR keeps DIR/status.json; `status --state DIR` prints it in words and as JSON', async () => {
  const c = new Cleanup();
  try {
    await within(60_000, 'the status scenario', async () => {
      const dir = tmpDir(c);
      const state = path.join(dir, 'state');
      const sink = await hashServer(c);
      const httpPort = await freePort();
      const gw = holdfast(['gateway', '--http', `127.0.0.1:${httpPort}`, '--devices', devicesFile(dir, { 'pi-1': KEY }), '--allow', `127.0.0.1:${sink.port}`], c);
      await gw.waitFor(/gateway: ready/, 15_000, 0);
      const local = await freePort();
      const dev = holdfast(
        ['device', '--gateway', `http://127.0.0.1:${httpPort}`, '--id', 'pi-1', '--key', KEY, '--state', state, '--status-interval-ms', '200', '--forward', `${local}:127.0.0.1:${sink.port}`],
        c,
      );
      await dev.waitFor(/device: session open/, 15_000, 0);
      const data = randomData(200_000);
      assert.is((await pushThrough(local, data)).toString(), sha256(data));
      // The counters follow within a few intervals.
      const file = path.join(state, 'status.json');
      let s: { state: string; transport: string; session: string; pid: number; counters: Record<string, number>; memory: { rss: number } } | null = null;
      while (s === null || s.counters.bytesOut < data.length) {
        await sleep(100);
        s = JSON.parse(fs.readFileSync(file, 'utf8'));
      }
      assert.is(s.state, 'open');
      assert.is(s.transport, 'http');
      assert.is(s.pid, dev.child.pid);
      assert.ok(s.counters.messagesOut > 1 && s.counters.bundlesOut >= 1 && s.counters.requestsSent >= 1, JSON.stringify(s.counters));
      assert.ok(s.memory.rss > 0);
      assert.not.ok(fs.existsSync(`${file}.tmp`), 'written through a temp file renamed over it');

      const words = await status(c, ['--state', state]);
      assert.is(words.code, 0, words.out);
      assert.match(words.out, /^device pi-1 \(pid \d+\): session open on http, since \d+ s ago\n/);
      assert.match(words.out, `session: ${s.session}\n`);
      assert.match(words.out, /\nmessages: \d+ in, \d+ out \(\d+ sent again, \d+ duplicates dropped\)\n/);
      assert.match(words.out, /\nhttp requests: [1-9]\d* sent, \d+ failed; new sessions after a failure: 0\n/);
      assert.match(words.out, new RegExp(`\\nstatus file ${file.replace(/[.]/g, '\\.')}, written \\d+ s ago\\n$`));
      const json = await status(c, ['--state', state, '--json']);
      assert.is(json.code, 0, json.out);
      const j = JSON.parse(json.out);
      assert.is(j.id, 'pi-1');
      assert.ok(j.counters.bytesOut >= data.length);

      // SIGTERM: the device stops and says so in the file.
      dev.kill('SIGTERM');
      assert.is(await dev.exited, 0);
      assert.match((await status(c, ['--state', state])).out, /^device pi-1 \(pid \d+\): stopped, /);
    });
  } finally {
    await c.run();
  }
});

test('status: no status file, a garbled one, no flag: one coded line and a non-zero exit', async () => {
  const c = new Cleanup();
  try {
    await within(30_000, 'the status errors', async () => {
      const dir = tmpDir(c);
      const none = await status(c, ['--state', dir]);
      assert.is(none.code, 1);
      assert.is(none.out, `holdfast status: HF_ERR_STATE: no status file ${path.join(dir, 'status.json')} (is the device running with --state or --status?)\n`);
      const f = path.join(dir, 'garbled.json');
      fs.writeFileSync(f, '{"id": "pi-1", "state": "op');
      const garbled = await status(c, ['--status', f]);
      assert.is(garbled.code, 1);
      assert.match(garbled.out, /^holdfast status: HF_ERR_STATE: status file .* is not JSON \(cut short or garbled\)\n$/);
      const noFlag = await status(c, []);
      assert.is(noFlag.code, 2);
      assert.match(noFlag.out, /^holdfast status: HF_ERR_OPTION: --status FILE or --state DIR is required\n$/);
    });
  } finally {
    await c.run();
  }
});

test.run();
