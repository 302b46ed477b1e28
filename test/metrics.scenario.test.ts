/**
 * `holdfast gateway --metrics`: the CLI gateway on loopback with its metrics listener, real device
 * sessions over HTTP and direct TCP, and a device with a wrong key; each scrape must follow what
 * happened (messages sent, sessions by transport, the refusal and its code). Children killed by PID.
 */
import * as http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Mux } from '../targets/host/app/mux';
import { Cleanup, devicesFile, freePort, holdfast, tmpDir } from './support/host';
import { sleep, within } from './support/within';
import { parseScrape } from './support/scrape';

const KEY = 'k-metrics-scenario';

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

test('gateway CLI --metrics: sessions by transport, messages, a bad-key hello as an auth failure and a refusal by code', async () => {
  const c = new Cleanup();
  try {
    await within(60_000, 'the metrics scenario', async () => {
      const dir = tmpDir(c);
      const [httpPort, tcpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
      const gw = holdfast(
        ['gateway', '--http', `127.0.0.1:${httpPort}`, '--tcp', `127.0.0.1:${tcpPort}`, '--metrics', `127.0.0.1:${metricsPort}`, '--echo', '--devices', devicesFile(dir, { 'pi-1': KEY, 'pi-2': KEY })],
        c,
      );
      await gw.waitFor(/gateway: ready/, 15_000, 0);
      assert.match(gw.log, new RegExp(`metrics=http://127\\.0\\.0\\.1:${metricsPort}/metrics`));
      const url = `http://127.0.0.1:${metricsPort}/metrics`;
      const scrape = async (): Promise<Map<string, number>> => {
        const r = await get(url);
        assert.is(r.status, 200);
        assert.is(r.type, 'text/plain; version=0.0.4; charset=utf-8');
        return parseScrape(r.body);
      };
      const m0 = await scrape();
      assert.is(m0.get('holdfast_gateway_sessions_open{transport="http"}'), 0);
      assert.is(m0.get('holdfast_gateway_sessions_open{transport="tcp"}'), 0);
      assert.is(m0.get('holdfast_gateway_messages_in_total'), 0);
      assert.is((await get(`http://127.0.0.1:${metricsPort}/`)).status, 404);
      assert.is((await get(`http://127.0.0.1:${httpPort}/metrics`)).status, 404, 'not on the device listener');

      // pi-1 over HTTP: 20 messages of 50 bytes, echoed.
      const a = connect({ gateway: `http://127.0.0.1:${httpPort}`, id: 'pi-1', key: KEY });
      c.add(() => a.destroy());
      const muxA = new Mux(a, { role: 'device' });
      muxA.on('error', () => {});
      let echoed = 0;
      muxA.on('message', () => echoed++);
      const N = 20;
      for (let i = 0; i < N; i++) assert.ok(muxA.send(Buffer.alloc(50, i)));
      while (echoed < N) await sleep(20);
      // pi-2 on direct TCP.
      const b = connect({ gateway: `http://127.0.0.1:${httpPort}`, tcp: `127.0.0.1:${tcpPort}`, id: 'pi-2', key: KEY });
      c.add(() => b.destroy());
      b.on('error', () => {});
      await new Promise<void>((resolve) => b.once('open', () => resolve()));
      while (b.transport !== 'tcp') await sleep(20);
      const m1 = await scrape();
      assert.is(m1.get('holdfast_gateway_sessions_open{transport="http"}'), 1);
      assert.is(m1.get('holdfast_gateway_sessions_open{transport="tcp"}'), 1);
      assert.is(m1.get('holdfast_gateway_sessions_opened_total'), 2);
      // Every message pi-1 sent, once, and its mux's START (docs/MUX.md 2a).
      assert.is(m1.get('holdfast_gateway_messages_in_total'), N + 1);
      const bytesIn = m1.get('holdfast_gateway_payload_bytes_in_total')!;
      assert.ok(bytesIn >= N * 50 && bytesIn <= N * 66 + 32, `${bytesIn} payload bytes in for ${N} messages of 50 bytes in mux frames`);
      assert.ok(m1.get('holdfast_gateway_messages_out_total')! >= N, 'the echoes');
      assert.ok(m1.get('holdfast_gateway_http_requests_total')! >= 2);
      assert.ok(m1.get('holdfast_gateway_tcp_frames_total')! >= 1);
      assert.ok(m1.get('holdfast_gateway_tcp_connections_total')! >= 1);
      assert.is(m1.get('holdfast_gateway_tcp_pre_auth_connections'), 0);
      assert.is(m1.get('holdfast_gateway_auth_failures_total'), 0);

      // A device with the wrong key: its hello is refused.
      const bad = connect({ gateway: `http://127.0.0.1:${httpPort}`, id: 'pi-1', key: 'not-the-key' });
      c.add(() => bad.destroy());
      const failed = await new Promise<string | undefined>((resolve) => bad.once('close', (e?: { code: string }) => resolve(e?.code)));
      assert.is(failed, 'HF_ERR_AUTH');
      const m2 = await scrape();
      const auth = m2.get('holdfast_gateway_auth_failures_total')!;
      assert.ok(auth >= 1, `${auth} auth failures`);
      assert.is(m2.get('holdfast_gateway_refusals_total{code="HF_ERR_AUTH"}'), auth);
      assert.is(m2.get('holdfast_gateway_sessions_open{transport="http"}'), 1, 'the refused hello opened nothing');

      // pi-1 closes cleanly: its counters stay in the totals.
      a.on('end', () => {});
      const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
      a.end();
      await closed;
      let m3 = await scrape();
      while (m3.get('holdfast_gateway_sessions_closed_total') !== 1) {
        await sleep(20);
        m3 = await scrape();
      }
      assert.is(m3.get('holdfast_gateway_sessions_open{transport="http"}'), 0);
      assert.is(m3.get('holdfast_gateway_messages_in_total'), N + 1);
      assert.is(m3.get('holdfast_gateway_payload_bytes_in_total'), bytesIn);
    });
  } finally {
    await c.run();
  }
});

test.run();
