/**
 * The cluster from the command line: three `holdfast gateway --echo --cluster ... --node ...`
 * processes on a NATS server started here, behind the project's round-robin balancer, 20 devices
 * (in this process, the mux as the CLI speaks it) streaming numbered messages. `holdfast ctl drain n3`
 * moves every session off n3 and exits 0; SIGTERM of n2 drains it too before it stops (exit 0). Every
 * echo arrives once and in order, and no device's session ends: a rolling upgrade of two nodes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Mux } from '../targets/host/app/mux';
import { Balancer } from './support/balancer';
import { Cleanup, devicesFile, freePort, holdfast, type Proc, tmpDir } from './support/host';
import { type Nats, natsAvailable, startNats } from './support/nats';
import { sleep, within } from './support/within';

const ok = natsAvailable('cluster-cli.scenario');

async function waitUntil(ms: number, cond: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!cond() && performance.now() < until) await sleep(10);
}

test('ctl drain n3, then SIGTERM n2: every session moves, every echo once and in order, exit 0 both', async () => {
  if (!ok) return;
  const cleanup = new Cleanup();
  let nats: Nats | null = null;
  let lb: Balancer | null = null;
  const chans: ReturnType<typeof connect>[] = [];
  try {
    await within(120_000, 'the rolling drain', async () => {
      nats = await startNats();
      const dir = tmpDir(cleanup, 'holdfast-cluster-cli-');
      const N = 20;
      const keys: Record<string, string> = {};
      for (let d = 0; d < N; d++) keys[`c-${d}`] = `key-${d}-0123456789`;
      const file = devicesFile(dir, keys);
      const nodes: Proc[] = [];
      const addrs: string[] = [];
      for (const node of ['n1', 'n2', 'n3']) {
        const port = await freePort();
        const p = holdfast(
          [
            'gateway',
            '--echo',
            '--http',
            `127.0.0.1:${port}`,
            '--devices',
            file,
            '--cluster',
            nats.urls,
            '--node',
            node,
            '--cluster-mode',
            'relay',
            '--ack-after',
            'standby',
            '--cluster-prefix',
            'hfcli',
          ],
          cleanup,
        );
        await p.waitFor(/gateway: ready/, 30_000);
        nodes.push(p);
        addrs.push(`127.0.0.1:${port}`);
      }
      await sleep(800); // a few heartbeats: every node hears the others
      lb = await Balancer.start(addrs);
      const got: number[][] = [];
      const muxes: Mux[] = [];
      const closed: string[] = [];
      for (let d = 0; d < N; d++) {
        const ch = connect({ gateway: `http://${lb.address}/v1/link`, id: `c-${d}`, key: keys[`c-${d}`], link: { deadAfterMs: 60_000 }, failures: { warnIntervalMs: 600_000 } });
        ch.on('close', (e?: { code?: string }) => closed.push(`c-${d} ${e?.code}`));
        chans.push(ch);
        const mux = new Mux(ch, { role: 'device' });
        mux.on('error', () => {});
        got.push([]);
        mux.on('message', (m: Buffer) => got[d].push(m.readUInt32BE(0)));
        muxes.push(mux);
      }
      let sent = 0;
      const sendUpTo = async (upto: number): Promise<void> => {
        for (; sent < upto; sent++) {
          for (const m of muxes) {
            const b = Buffer.alloc(16);
            b.writeUInt32BE(sent, 0);
            m.send(b);
          }
          await sleep(20);
        }
      };
      await sendUpTo(20);
      await waitUntil(20_000, () => got.every((g) => g.length >= 10));
      const drain = holdfast(['ctl', 'drain', 'n3', '--cluster', nats.urls, '--cluster-prefix', 'hfcli'], cleanup);
      const sending = sendUpTo(40);
      assert.is(await drain.exited, 0, drain.log);
      assert.match(drain.log, /^drained n3: \d+ sessions moved, 0 stay, in \d+ ms \(one handoff: p50 \d+ ms, p99 \d+ ms\)$/m);
      await sending;
      nodes[1].kill('SIGTERM');
      await sendUpTo(60);
      assert.is(await nodes[1].exited, 0, nodes[1].log.slice(-3000));
      assert.match(nodes[1].log, /drained .*moved=\d+ failed=0/);
      await sendUpTo(80);
      await waitUntil(30_000, () => got.every((g) => g.length >= 80));
      for (let d = 0; d < N; d++)
        assert.equal(
          got[d],
          Array.from({ length: 80 }, (_, i) => i),
          `device ${d}: every echo once, in order`,
        );
      assert.equal(closed, [], 'no session ended');
      console.log(`  ${drain.log.trim()}; ${/drained .*/.exec(nodes[1].log)?.[0]}`);
    });
  } finally {
    for (const ch of chans) ch.destroy();
    await sleep(50);
    await (lb as Balancer | null)?.close();
    await cleanup.run();
    await (nats as Nats | null)?.stop();
  }
});

test.run();
