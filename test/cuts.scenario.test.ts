/**
 * Goodput through a path that cuts connections (PROTOCOL 6.4): `bin/holdfast gateway` and
 * `bin/holdfast device --no-tcp` with the project's chaos proxy between them, which cuts every
 * connection (RST both ways) once it carried a random number of bytes below a bound, and a forwarded
 * port carrying a stream whose sha256 must come out as it went in.
 *
 *  1. cuts below 256 KiB: 32 MiB device -> gateway at >= 25% of the goodput of the same run uncut.
 *
 * Each run is bounded in time; the figures are printed (they are not the test's subject: the bound
 * of case 1 is a ratio within one run).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startChaosProxy } from '../tools/chaos-proxy';
import { within } from './support/within';
import { Cleanup, type Proc, devicesFile, freePort, hashServer, holdfast, pushThrough, randomData, sha256, tmpDir } from './support/host';

const MiB = 1 << 20;
const KEY = 'k-5e1d0a';

interface Run {
  mbPerS: number;
  seconds: number;
  cuts: number;
  connections: number;
  device: Proc;
}

/** One gateway, one proxy cutting below `cutBelow` bytes (0: never), one device; `bytes` pushed device -> gateway. */
async function run(c: Cleanup, bytes: number, cutBelow: number, seed: number): Promise<Run> {
  const dir = tmpDir(c);
  const sink = await hashServer(c);
  const httpPort = await freePort();
  const gw = holdfast(['gateway', '--http', `127.0.0.1:${httpPort}`, '--devices', devicesFile(dir, { 'pi-1': KEY }), '--allow', `127.0.0.1:${sink.port}`], c);
  await gw.waitFor(/gateway: ready/);
  const proxy = await startChaosProxy({ target: { port: httpPort }, cutBelow, seed });
  c.add(() => proxy.close());
  const local = await freePort();
  const device = holdfast(['device', '--id', 'pi-1', '--key', KEY, '--no-tcp', '--gateway', `http://127.0.0.1:${proxy.port}`, '--forward', `${local}:127.0.0.1:${sink.port}`], c);
  await device.waitFor(/device: session open/, 60_000);
  const data = randomData(bytes);
  const t0 = process.hrtime.bigint();
  const digest = (await pushThrough(local, data)).toString();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  assert.is(digest, sha256(data), `sha256 through a path cut below ${cutBelow} bytes`);
  assert.equal(sink.bytes, [bytes]);
  const s = proxy.stats;
  return { mbPerS: bytes / 1e6 / seconds, seconds, cuts: s.kills.budget, connections: s.connections, device };
}

function report(label: string, r: Run): void {
  console.log(`  ${label}: ${r.mbPerS.toFixed(2)} MB/s (${r.seconds.toFixed(1)} s), ${r.cuts} connections cut of ${r.connections}`);
}

test('1. cuts below 256 KiB: 32 MiB arrive intact at >= 25% of the uncut goodput', async () => {
  const c = new Cleanup();
  try {
    await within(240_000, 'cuts below 256 KiB', async () => {
      const plain = await run(c, 32 * MiB, 0, 1);
      report('uncut', plain);
      const cut = await run(c, 32 * MiB, 256 * 1024, 11);
      report('cut below 256 KiB', cut);
      assert.ok(cut.cuts > 10, `the proxy cut ${cut.cuts} connections`);
      const ratio = cut.mbPerS / plain.mbPerS;
      console.log(`  ratio ${ratio.toFixed(2)} (goal >= 0.25)`);
      assert.ok(ratio >= 0.25, `goodput under cuts ${cut.mbPerS.toFixed(2)} MB/s is ${(ratio * 100).toFixed(0)}% of uncut ${plain.mbPerS.toFixed(2)} MB/s`);
    });
  } finally {
    await c.run();
  }
});

test.run();
