/**
 * Failover of a primary/standby pair, each gateway a process of its own (bench/failover/node.ts)
 * on 127.0.0.1, ackAfter 'standby'; 20 devices in this process, each knowing both gateways, streaming
 * both ways (each message echoed back):
 *   1. A primary, B its standby; B synced; traffic;
 *   2. kill -9 of A mid-stream: B takes over (epoch 2), the devices move to it;
 *   3. A started again as B's standby, synced (full state);
 *   4. kill -9 of B: A takes over (epoch 3), the devices move back;
 *   5. traffic to the end.
 * Then: every device got every echo exactly once, in order; the gateways' receipts (on disk before
 * a message could be acknowledged) hold every message; a node's receipts of a device run in order
 * without a gap; a message received twice (or acknowledged before a kill and received after it) is
 * marked `again`. A node hands its application a message only once its standby holds it, so what comes again
 * after a takeover is what the dead node may have handed over after its last record: marked `again`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type DeviceChannel, connect } from '../targets/host/device/device';
import { Cleanup, Proc, ROOT, freePort, tmpDir } from './support/host';
import { sleep, within } from './support/within';

const DEVICES = 20;
const PER = 240;
const PAIR_KEY = 'failover-pair-key-0123456789';
const DEVICE_KEY = 'failover-device-key';

interface Node {
  proc: Proc;
  receipts: string;
}

function startNode(c: Cleanup, dir: string, name: string, http: number, listen: number, standbyOf: number | null): Node {
  const receipts = path.join(dir, `receipts-${name}-${Date.now()}.txt`);
  const o = {
    http: `127.0.0.1:${http}`,
    listen: `127.0.0.1:${listen}`,
    standbyOf: standbyOf === null ? null : `127.0.0.1:${standbyOf}`,
    node: name,
    pairKey: PAIR_KEY,
    deviceKey: DEVICE_KEY,
    receipts,
    logLevel: process.env.FAILOVER_LOG ?? 'warn',
  };
  const proc = new Proc(process.execPath, ['-r', 'tsx/cjs', path.join(ROOT, 'bench', 'failover', 'node.ts'), JSON.stringify(o)], c);
  return { proc, receipts };
}

interface Receipt {
  node: string;
  index: number;
  again: boolean;
}

function readReceipts(nodes: { name: string; file: string }[]): Map<string, Receipt[][]> {
  const out = new Map<string, Receipt[][]>();
  for (const [k, n] of nodes.entries()) {
    const text = fs.existsSync(n.file) ? fs.readFileSync(n.file, 'utf8') : '';
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const [dev, i, again] = line.split(' ');
      let per = out.get(dev);
      if (per === undefined) {
        per = nodes.map(() => []);
        out.set(dev, per);
      }
      per[k].push({ node: n.name, index: Number(i), again: again === '1' });
    }
  }
  return out;
}

test('kill -9 of the primary, then of the new one: nothing acknowledged lost or repeated, both ways', async () => {
  const c = new Cleanup();
  const devs: DeviceChannel[] = [];
  try {
    await within(120_000, 'the failover scenario', async () => {
      const dir = tmpDir(c);
      const [httpA, httpB, peerA, peerB] = [await freePort(), await freePort(), await freePort(), await freePort()];
      const files: { name: string; file: string }[] = [];
      const a1 = startNode(c, dir, 'a', httpA, peerA, null);
      files.push({ name: 'a1', file: a1.receipts });
      await a1.proc.waitFor(/primary 1/);
      const b = startNode(c, dir, 'b', httpB, peerB, peerA);
      files.push({ name: 'b', file: b.receipts });
      await b.proc.waitFor(/synced/);

      const got: string[][] = [];
      const sent: number[] = [];
      for (let d = 0; d < DEVICES; d++) {
        const ch = connect({ gateway: [`http://127.0.0.1:${httpA}`, `http://127.0.0.1:${httpB}`], id: `dev-${d}`, key: DEVICE_KEY, link: { deadAfterMs: 60_000 } });
        got.push([]);
        sent.push(0);
        ch.on('message', (m: Buffer) => got[d].push(m.toString()));
        devs.push(ch);
      }
      let stop = false;
      const senders = devs.map(async (ch, d) => {
        while (sent[d] < PER && !stop) {
          if (!ch.send(Buffer.from(String(sent[d])))) {
            await new Promise<void>((r) => ch.once('drain', () => r()));
            continue;
          }
          sent[d]++;
          await sleep(8);
        }
      });
      /** Per device, the messages it saw acknowledged (a lower bound: accepted minus still unacknowledged). */
      const acked = (): number[] => devs.map((ch) => ch.accepted - ch.unacknowledged);
      // Polls until `cond` holds; gives up after 30 s (and stops polling, so a failed run ends).
      const until = async (what: string, cond: () => boolean): Promise<void> => {
        const end = performance.now() + 30_000;
        while (!cond()) {
          if (performance.now() > end) throw new Error(`${what}: not done within 30000 ms`);
          await sleep(10);
        }
      };

      await until('a third of the traffic', () => sent.every((n) => n >= PER / 3) && got.every((g) => g.length >= 20));
      const t0 = performance.now();
      a1.proc.kill('SIGKILL');
      const ackedAtKill1 = acked();
      await b.proc.waitFor(/primary 2/, 10_000, 0);
      const promote1Ms = performance.now() - t0;
      await until('echoes from the new primary', () => got.every((g, d) => g.length > Math.min(PER - 1, ackedAtKill1[d])));
      const serve1Ms = performance.now() - t0;

      const a2 = startNode(c, dir, 'a', httpA, peerA, peerB);
      files.push({ name: 'a2', file: a2.receipts });
      await a2.proc.waitFor(/synced/, 15_000);
      await until('two thirds of the traffic', () => sent.every((n) => n >= (2 * PER) / 3));
      const t1 = performance.now();
      b.proc.kill('SIGKILL');
      const ackedAtKill2 = acked();
      await a2.proc.waitFor(/primary 3/, 10_000, 0);
      const promote2Ms = performance.now() - t1;

      await Promise.all(senders);
      await until('every echo', () => got.every((g) => g.length >= PER)).catch((e) => {
        const rec = readReceipts(files);
        const short = got
          .map((g, d) => {
            const missing = [...Array(PER).keys()].filter((i) => !g.includes(`e${i}`));
            const where = missing.map((i) =>
              (rec.get(`dev-${d}`) ?? [])
                .flat()
                .filter((r) => r.index === i)
                .map((r) => `${r.node}${r.again ? '*' : ''}`),
            );
            return { d, echoes: g.length, sent: sent[d], unacknowledged: devs[d].unacknowledged, missing, where };
          })
          .filter((x) => x.echoes < PER);
        throw new Error(`${(e as Error).message}: short (device, echoes, sent, unacknowledged) ${JSON.stringify(short)}\n--- a2:\n${a2.proc.log.slice(-4000)}`);
      });
      stop = true;

      for (let d = 0; d < DEVICES; d++) {
        const want = Array.from({ length: PER }, (_, i) => `e${i}`);
        assert.equal(got[d], want, `device ${d}: every echo once, in order`);
      }
      const receipts = readReceipts(files);
      let again = 0;
      let repeats = 0;
      for (let d = 0; d < DEVICES; d++) {
        const per = receipts.get(`dev-${d}`);
        assert.ok(per !== undefined, `receipts of dev-${d}`);
        const seen = new Set<number>();
        for (const [k, list] of per.entries()) {
          for (let j = 1; j < list.length; j++) assert.is(list[j].index, list[j - 1].index + 1, `dev-${d} on ${files[k].name}: in order, no gap`);
          for (const r of list) {
            // Received again: only after a kill, by the node that took over, marked `again`, and
            // only what the device had not seen acknowledged (the first() checks below).
            if (seen.has(r.index)) {
              repeats++;
              assert.ok(r.again, `dev-${d} message ${r.index} received again on ${r.node} without being marked`);
            }
            seen.add(r.index);
            if (r.again) again++;
          }
        }
        assert.is(seen.size, PER, `dev-${d}: every message received`);
        // What was acknowledged before a kill reaches the node that took over only marked `again`
        // (it may have reached the dead node's application after its last record).
        for (const [k, at] of [
          [1, ackedAtKill1[d]],
          [2, ackedAtKill2[d]],
        ] as const) {
          for (const r of per[k]) if (r.index < at) assert.ok(r.again, `dev-${d}: ${r.node} received acknowledged message ${r.index} unmarked`);
        }
      }
      process.stdout.write(
        `  failover: ${DEVICES} devices × ${PER} each way; takeover ${promote1Ms.toFixed(0)} ms and ${promote2Ms.toFixed(0)} ms (promoted), served again ${serve1Ms.toFixed(0)} ms; received again ${repeats} (each marked again; marked in all ${again})\n`,
      );
    });
  } finally {
    for (const ch of devs) ch.destroy();
    await c.run();
  }
});

test.run();
