/**
 * Failures a person can see at the default log level: a device whose gateway cannot be reached,
 * answers with an error or does not answer logs rate-limited warnings (the reason, the code, the next
 * try) and "reachable again" when it recovers; a device whose session a second process with the same
 * id took warns and backs off instead of taking it back at once. On 127.0.0.1, bounded, children
 * killed by PID (Cleanup).
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Gateway } from '../targets/host/gateway/gateway';
import { createLog } from '../targets/node/log';
import { Cleanup, devicesFile, freePort, holdfast, tmpDir } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'k-visible';

/** A log whose text lines are kept. */
function capture(name: string) {
  const lines: string[] = [];
  const log = createLog({ name, out: { write: (s: string) => lines.push(s.slice(0, -1)) } });
  return { log, lines };
}

/** An HTTP server on 127.0.0.1:0 answering every request with `answer` (null: never answers). */
async function fakeGateway(c: Cleanup, answer: ((res: http.ServerResponse) => void) | null): Promise<number> {
  const held: http.ServerResponse[] = [];
  const s = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => (answer === null ? held.push(res) : answer(res)));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  c.add(
    () =>
      new Promise((r) => {
        for (const res of held) res.destroy();
        s.closeAllConnections();
        s.close(() => r(undefined));
      }),
  );
  return (s.address() as net.AddressInfo).port;
}

const warns = (lines: string[], re: RegExp): string[] => lines.filter((l) => / warn /.test(l) && re.test(l));

test('device CLI: a gateway nobody listens on is a warning with the reason and the next try, rate-limited', async () => {
  const c = new Cleanup();
  try {
    const p = holdfast(['device', '--gateway', 'http://127.0.0.1:9', '--no-tcp', '--id', 'pi-1', '--key', KEY, '--warn-interval-ms', '2000'], c);
    const m = await p.waitFor(/ warn {2}device: cannot reach the gateway: connection refused[^\n]*\n/, 5000);
    assert.match(m[0], /code=HF_ERR_CONNECT/);
    assert.match(m[0], /reason="gateway 127\.0\.0\.1:9: ECONNREFUSED"/);
    assert.match(m[0], /next_try="in \d+\.\d s"/);
    await sleep(6000);
    const n = p.log.split('\n').filter((l) => / warn {2}device: cannot reach the gateway/.test(l)).length;
    // The first at once, then at most one per 2 s: at most 4 in ~6 s (and retries back off anyway).
    assert.ok(n >= 1 && n <= 4, `${n} warnings in ~6 s:\n${p.log}`);
  } finally {
    await c.run();
  }
});

test('device: an HTML 503, garbage and silence are warnings in plain words; a gateway coming back is "reachable again"', async () => {
  const c = new Cleanup();
  try {
    const cases: [string, ((res: http.ServerResponse) => void) | null, RegExp][] = [
      [
        'html 503',
        (res) => res.writeHead(503, { 'Content-Type': 'text/html' }).end('<html>Service Unavailable</html>'),
        /answered with an error, not a bundle.*code=HF_ERR_HTTP reason="HTTP 503 Service Unavailable with text\/html body"/,
      ],
      ['garbage', (res) => res.writeHead(200, { 'Content-Type': 'application/cbor' }).end(Buffer.from('not a bundle at all')), /answer is not a bundle this device can read.*code=HF_ERR_/],
      ['silence', null, /the gateway does not answer.*code=HF_ERR_TIMEOUT.*next_try=/],
    ];
    for (const [name, answer, re] of cases) {
      const port = await fakeGateway(c, answer);
      const { log, lines } = capture('device');
      const ch = connect({ gateway: `http://127.0.0.1:${port}`, id: 'pi-1', key: KEY, log, failures: { warnIntervalMs: 60_000 } });
      ch.on('error', () => {});
      c.add(() => ch.destroy());
      await within(10_000, name, async () => {
        while (warns(lines, re).length === 0) await sleep(50);
      });
      ch.destroy();
    }
    // Refused first, then a gateway on that port: one info line after the failures.
    const port = await freePort();
    const { log, lines } = capture('device');
    const ch = connect({ gateway: `http://127.0.0.1:${port}`, id: 'pi-1', key: KEY, log });
    c.add(() => ch.destroy());
    await within(5000, 'the refusal', async () => {
      while (warns(lines, /connection refused/).length === 0) await sleep(20);
    });
    const gw = await Gateway.start({ http: `127.0.0.1:${port}`, devices: { 'pi-1': KEY } });
    c.add(() => gw.close());
    await within(15_000, 'reachable again', async () => {
      while (!lines.some((l) => / info {2}device: gateway reachable again after \d+ failures?/.test(l))) await sleep(50);
    });
    ch.destroy();
  } finally {
    await c.run();
  }
});

test('gateway: refused bad-key hellos are summed up per source address and code at warn level', async () => {
  const c = new Cleanup();
  try {
    const { log, lines } = capture('gateway');
    const gw = await Gateway.start({ http: '127.0.0.1:0', devices: { 'pi-1': KEY }, log, refusalLog: { summaryIntervalMs: 500 } });
    c.add(() => gw.close());
    const N = 40;
    await within(20_000, `${N} bad-key hellos`, async () => {
      for (let i = 0; i < N; i += 10) {
        await Promise.all(
          Array.from(
            { length: 10 },
            () =>
              new Promise<void>((resolve) => {
                const ch = connect({ gateway: gw.http?.url ?? '', id: 'pi-1', key: 'wrong key', log: createLog({ level: 'error', out: { write: () => true } }) });
                ch.on('error', () => {});
                ch.once('close', () => resolve());
              }),
          ),
        );
      }
    });
    const first = warns(lines, /refused a request from 127\.0\.0\.1: HF_ERR_AUTH \(unknown device or wrong key/);
    assert.is(first.length, 1, lines.join('\n'));
    await within(5000, 'the summary', async () => {
      while (warns(lines, /refused \d+ requests from 127\.0\.0\.1 in the last \d+ s: HF_ERR_AUTH/).length === 0) await sleep(50);
    });
    await gw.close();
    const total = warns(lines, /refused \d+ requests from 127\.0\.0\.1/).reduce((n, l) => n + Number(/refused (\d+) requests/.exec(l)?.[1]), 0);
    assert.ok(total + 1 >= N, `${total} + 1 refusals summed up, ${N} hellos sent:\n${lines.join('\n')}`);
    // One line at once, then one per interval: nowhere near one per hello.
    assert.ok(warns(lines, /refused/).length <= 10, lines.join('\n'));
  } finally {
    await c.run();
  }
});

test('two devices with the same id: the replaced one warns and backs off instead of fighting', async () => {
  const c = new Cleanup();
  try {
    const dir = tmpDir(c);
    const gw = holdfast(['gateway', '--http', '127.0.0.1:0', '--devices', devicesFile(dir, { 'pi-1': KEY })], c);
    const [, url] = await gw.waitFor(/listening\s+http=(\S+)/, 10_000);
    const dev = () => holdfast(['device', '--gateway', url, '--no-tcp', '--id', 'pi-1', '--key', KEY, '--replaced-backoff-ms', '4000'], c);
    const a = dev();
    await a.waitFor(/session open/, 10_000);
    const b = dev();
    await b.waitFor(/session open/, 10_000);
    const w = await a.waitFor(/ warn {2}device: another process uses device id pi-1[^\n]*\n/, 10_000, 0);
    assert.match(w[0], /code=HF_ERR_CLOSED/);
    assert.match(w[0], /in_s=4/, w[0]);
    await sleep(3000);
    const starts = (p: { log: string }) => p.log.split('\n').filter((l) => / info {2}device: starting /.test(l)).length;
    // Without the back-off both restart every second or so, taking the session from each other.
    assert.is(starts(a), 1, `a restarted during its back-off:\n${a.log}`);
    assert.ok(starts(b) <= 1, `b:\n${b.log}`);
  } finally {
    await c.run();
  }
});

test.run();
