/**
 * The gateway's metrics: the Prometheus text renderer (format, escaping, bad names), and the
 * gateway's counters over a session on loopback (totals survive the session's end, counters only rise).
 */
import * as http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../targets/host/device/device';
import { Gateway } from '../targets/host/gateway/gateway';
import { GatewayCounters, METRICS_CONTENT_TYPE, renderMetrics } from '../targets/host/gateway/metrics';
import { code } from './support/errors';
import { Cleanup } from './support/host';
import { parseScrape } from './support/scrape';
import { sleep, within } from './support/within';

test('renderMetrics: HELP, TYPE and one line per sample, in the order given', () => {
  const text = renderMetrics([
    { name: 'a_total', help: 'Things.', type: 'counter', samples: [{ value: 3 }] },
    {
      name: 'b',
      help: 'Open now.',
      type: 'gauge',
      samples: [
        { labels: { transport: 'http' }, value: 1 },
        { labels: { transport: 'tcp', x: 'y' }, value: 0.5 },
      ],
    },
    { name: 'c_total', help: 'None yet.', type: 'counter', samples: [] },
  ]);
  assert.is(
    text,
    [
      '# HELP a_total Things.',
      '# TYPE a_total counter',
      'a_total 3',
      '# HELP b Open now.',
      '# TYPE b gauge',
      'b{transport="http"} 1',
      'b{transport="tcp",x="y"} 0.5',
      '# HELP c_total None yet.',
      '# TYPE c_total counter',
      '',
    ].join('\n'),
  );
  assert.is(METRICS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
});

test('renderMetrics: label values escape backslash, quote and newline; help escapes backslash and newline', () => {
  const text = renderMetrics([{ name: 'x', help: 'a\\b\nc "q"', type: 'gauge', samples: [{ labels: { v: 'p\\q"r\ns' }, value: 1 }] }]);
  assert.is(text, '# HELP x a\\\\b\\nc "q"\n# TYPE x gauge\nx{v="p\\\\q\\"r\\ns"} 1\n');
});

test('renderMetrics: infinities and NaN as the format writes them', () => {
  const text = renderMetrics([
    {
      name: 'v',
      help: 'h',
      type: 'gauge',
      samples: [
        { labels: { k: 'a' }, value: Infinity },
        { labels: { k: 'b' }, value: -Infinity },
        { labels: { k: 'c' }, value: NaN },
      ],
    },
  ]);
  assert.match(text, /v\{k="a"\} \+Inf\nv\{k="b"\} -Inf\nv\{k="c"\} NaN\n/);
});

test('renderMetrics: a bad metric or label name, a counter without _total, a name twice are HF_ERR_OPTION', () => {
  const g = (name: string, labels?: Record<string, string>) => ({ name, help: 'h', type: 'gauge' as const, samples: [{ labels, value: 1 }] });
  assert.is(
    code(() => renderMetrics([g('1bad')])),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => renderMetrics([g('a-b')])),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => renderMetrics([g('ok', { 'bad-label': 'v' })])),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => renderMetrics([g('ok', { __reserved: 'v' })])),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => renderMetrics([{ name: 'things', help: 'h', type: 'counter', samples: [] }])),
    'HF_ERR_OPTION',
  );
  assert.is(
    code(() => renderMetrics([g('twice'), g('twice')])),
    'HF_ERR_OPTION',
  );
});

test('GatewayCounters: refusals by code, HF_ERR_AUTH also an authentication failure', () => {
  const c = new GatewayCounters();
  c.refused('HF_ERR_AUTH');
  c.refused('HF_ERR_AUTH');
  c.refused('HF_ERR_BUSY');
  assert.equal(
    [...c.refusals],
    [
      ['HF_ERR_AUTH', 2],
      ['HF_ERR_BUSY', 1],
    ],
  );
  assert.is(c.authFailures, 2);
});

/** The names declared counters in `text`. */
function counterNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((x) => x[1]);
}

test('gateway: the totals of a session that ended stay, every counter only rises', async () => {
  const c = new Cleanup();
  try {
    const gw = await Gateway.start({ http: '127.0.0.1:0', devices: { 'pi-1': 'k-metrics' } });
    c.add(() => gw.close());
    gw.on('session', (ch) => {
      ch.on('message', (m: Buffer) => ch.send(m));
      ch.on('end', () => ch.end());
    });
    const before = parseScrape(gw.metricsText());
    assert.is(before.get('holdfast_gateway_sessions_open{transport="http"}'), 0);
    assert.is(before.get('holdfast_gateway_messages_in_total'), 0);
    const ch = connect({ gateway: gw.http!.url, id: 'pi-1', key: 'k-metrics' });
    c.add(() => ch.destroy());
    let back = 0;
    ch.on('message', () => back++);
    for (let i = 0; i < 10; i++) ch.send(Buffer.alloc(100, i));
    await within(10_000, '10 echoes', async () => {
      while (back < 10) await sleep(10);
    });
    const live = parseScrape(gw.metricsText());
    assert.is(live.get('holdfast_gateway_sessions_open{transport="http"}'), 1);
    assert.is(live.get('holdfast_gateway_sessions_opened_total'), 1);
    assert.is(live.get('holdfast_gateway_messages_in_total'), 10);
    assert.is(live.get('holdfast_gateway_payload_bytes_in_total'), 1000);
    assert.ok(live.get('holdfast_gateway_messages_out_total')! >= 10);
    assert.ok(live.get('holdfast_gateway_payload_bytes_out_total')! >= 1000);
    await within(10_000, 'a clean close', () => {
      const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
      ch.end();
      return closed;
    });
    await within(5000, 'the session ends on the gateway', async () => {
      while (gw.sessionCount > 0) await sleep(10);
    });
    const text = gw.metricsText();
    const after = parseScrape(text);
    assert.is(after.get('holdfast_gateway_sessions_open{transport="http"}'), 0);
    assert.is(after.get('holdfast_gateway_sessions_closed_total'), 1);
    assert.is(after.get('holdfast_gateway_messages_in_total'), 10, 'the ended session stays in the totals');
    const names = counterNames(text);
    assert.ok(names.length >= 15, `${names.length} counters`);
    for (const [k, v] of after) {
      if (!names.some((n) => k === n || k.startsWith(`${n}{`))) continue;
      assert.ok(v >= (live.get(k) ?? 0) && v >= (before.get(k) ?? 0), `${k} went from ${live.get(k)} to ${v}`);
    }
  } finally {
    await c.run();
  }
});

test('gateway: the metrics listener serves GET /metrics with the exposition type, 404 elsewhere, and the device listener does not serve it', async () => {
  const c = new Cleanup();
  try {
    const gw = await Gateway.start({ http: '127.0.0.1:0', devices: {}, metrics: '127.0.0.1:0' });
    c.add(() => gw.close());
    const get = (url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> =>
      new Promise((resolve, reject) => {
        http
          .request(url, { method }, (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
          })
          .on('error', reject)
          .end();
      });
    assert.match(gw.metrics!.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const ok = await get(gw.metrics!.url);
    assert.is(ok.status, 200);
    assert.is(ok.type, METRICS_CONTENT_TYPE);
    assert.match(ok.body, /^# HELP holdfast_gateway_sessions_open /);
    assert.match(ok.body, /\nholdfast_gateway_uptime_seconds \d/);
    assert.match(ok.body, /\nholdfast_gateway_resident_memory_bytes [1-9]\d*\n/);
    assert.is((await get(gw.metrics!.url.replace('/metrics', '/'))).status, 404);
    assert.is((await get(gw.metrics!.url.replace('/metrics', '/metrics/x'))).status, 404);
    assert.is((await get(gw.metrics!.url, 'POST')).status, 405);
    const main = gw.http!.url.replace('/v1/link', '/metrics');
    assert.is((await get(main)).status, 404);
    // That 404 of the device listener is a refusal of its own, counted by code.
    assert.is(parseScrape(gw.metricsText()).get('holdfast_gateway_refusals_total{code="HF_ERR_HTTP"}'), 1);
    assert.is(parseScrape(gw.metricsText()).get('holdfast_gateway_http_requests_total'), 1);
  } finally {
    await c.run();
  }
});

test('gateway: a metrics address that is taken is HF_ERR_CONNECT, a malformed one HF_ERR_OPTION', async () => {
  const c = new Cleanup();
  try {
    const gw = await Gateway.start({ http: '127.0.0.1:0', devices: {}, metrics: '127.0.0.1:0' });
    c.add(() => gw.close());
    const taken = gw.metrics!.address;
    let err: unknown;
    try {
      await Gateway.start({ http: '127.0.0.1:0', devices: {}, metrics: taken });
    } catch (e) {
      err = e;
    }
    assert.is((err as { code?: string }).code, 'HF_ERR_CONNECT');
    err = undefined;
    try {
      await Gateway.start({ http: '127.0.0.1:0', devices: {}, metrics: 'nope' });
    } catch (e) {
      err = e;
    }
    assert.is((err as { code?: string }).code, 'HF_ERR_OPTION');
  } finally {
    await c.run();
  }
});

test.run();
