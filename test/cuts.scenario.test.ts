/**
 * Goodput through a path that cuts connections (PROTOCOL 6.4): `bin/holdfast gateway` and
 * `bin/holdfast device --no-tcp` with the project's chaos proxy between them, which cuts every
 * connection (RST both ways) once it carried a random number of bytes below a bound, and a forwarded
 * port carrying a stream whose sha256 must come out as it went in.
 *
 *  1. cuts below 256 KiB: 32 MiB device -> gateway at >= 25% of the goodput of the same run uncut.
 *  2. the same gateway -> device (answers shrink to the device's room field; lost answers are named).
 *  3. cuts below 2 KiB (no request of a default size fits; messages go in pieces): 1 MiB each way
 *     still arrives intact.
 *
 * Each run is bounded in time; the figures are printed (they are not the test's subject: the bound
 * of case 1 is a ratio within one run).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startChaosProxy } from '../tools/chaos-proxy';
import { within } from './support/within';
import { Cleanup, type Proc, devicesFile, freePort, hashServer, holdfast, pushThrough, randomData, readAll, sha256, sourceServer, tmpDir } from './support/host';

const MiB = 1 << 20;
const KEY = 'k-5e1d0a';

interface Run {
  mbPerS: number;
  seconds: number;
  cuts: number;
  connections: number;
  device: Proc;
}

/**
 * One gateway, one proxy cutting below `cutBelow` bytes (0: never), one device; `bytes` go through a
 * forwarded port device -> gateway ('up') or gateway -> device ('down').
 */
async function run(c: Cleanup, dir: 'up' | 'down', bytes: number, cutBelow: number, seed: number): Promise<Run> {
  const tmp = tmpDir(c);
  const data = randomData(bytes);
  const sink = dir === 'up' ? await hashServer(c) : null;
  const target = sink?.port ?? (await sourceServer(c, data)).port;
  const httpPort = await freePort();
  const gw = holdfast(['gateway', '--http', `127.0.0.1:${httpPort}`, '--devices', devicesFile(tmp, { 'pi-1': KEY }), '--allow', `127.0.0.1:${target}`], c);
  await gw.waitFor(/gateway: ready/);
  const proxy = await startChaosProxy({ target: { port: httpPort }, cutBelow, seed });
  c.add(() => proxy.close());
  const local = await freePort();
  const device = holdfast(['device', '--id', 'pi-1', '--key', KEY, '--no-tcp', '--gateway', `http://127.0.0.1:${proxy.port}`, '--forward', `${local}:127.0.0.1:${target}`], c);
  await device.waitFor(/device: session open/, 60_000);
  const t0 = process.hrtime.bigint();
  if (sink !== null) {
    const digest = (await pushThrough(local, data)).toString();
    assert.is(digest, sha256(data), `sha256 up through a path cut below ${cutBelow} bytes`);
    assert.equal(sink.bytes, [bytes]);
  } else {
    const got = await readAll(local);
    assert.is(got.length, bytes, 'bytes down');
    assert.is(sha256(got), sha256(data), `sha256 down through a path cut below ${cutBelow} bytes`);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = proxy.stats;
  return { mbPerS: bytes / 1e6 / seconds, seconds, cuts: s.kills.budget, connections: s.connections, device };
}

function report(label: string, r: Run): void {
  console.log(`  ${label}: ${r.mbPerS.toFixed(2)} MB/s (${r.seconds.toFixed(1)} s), ${r.cuts} connections cut of ${r.connections}`);
}

for (const [n, dir] of [
  [1, 'up'],
  [2, 'down'],
] as const) {
  test(`${n}. cuts below 256 KiB, ${dir}: 32 MiB arrive intact at >= 25% of the uncut goodput`, async () => {
    const c = new Cleanup();
    try {
      await within(240_000, `cuts below 256 KiB ${dir}`, async () => {
        const plain = await run(c, dir, 32 * MiB, 0, 1);
        report(`uncut ${dir}`, plain);
        const cut = await run(c, dir, 32 * MiB, 256 * 1024, 10 + n);
        report(`cut below 256 KiB ${dir}`, cut);
        assert.ok(cut.cuts > 10, `the proxy cut ${cut.cuts} connections`);
        const ratio = cut.mbPerS / plain.mbPerS;
        console.log(`  ratio ${ratio.toFixed(2)} (goal >= 0.25)`);
        assert.ok(ratio >= 0.25, `goodput under cuts ${cut.mbPerS.toFixed(2)} MB/s is ${(ratio * 100).toFixed(0)}% of uncut ${plain.mbPerS.toFixed(2)} MB/s`);
      });
    } finally {
      await c.run();
    }
  });
}

test('3. cuts below 2 KiB: 1 MiB still arrives intact, each way', async () => {
  const c = new Cleanup();
  try {
    await within(240_000, 'cuts below 2 KiB', async () => {
      for (const dir of ['up', 'down'] as const) {
        const cut = await run(c, dir, MiB, 2048, dir === 'up' ? 5 : 6);
        report(`cut below 2 KiB ${dir}`, cut);
        assert.ok(cut.cuts > 100, `the proxy cut ${cut.cuts} connections`);
      }
    });
  } finally {
    await c.run();
  }
});

test.run();
