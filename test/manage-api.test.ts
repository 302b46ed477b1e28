/**
 * The management API over HTTP on 127.0.0.1: login and its cookie's flags, CSRF on state-changing
 * requests, roles, a forged cookie, API tokens, bad bodies, and the live event stream; every refused
 * state-changing request is in the audit log. Devices on loopback links served by the device's own
 * management server (test/support/manage-device.ts).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Gateway } from '../targets/host/gateway/gateway';
import type { ManageApi } from '../targets/host/gateway/manage/api';
import { type Management, startManagement } from '../targets/host/gateway/manage/start';
import { silentLog } from '../targets/node/log';
import { connectBoard, testBoard } from './support/manage-device';
import { MemoryPeers } from './support/memory-peers';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

function request(base: string, method: string, p: string, opts: { body?: unknown; headers?: Record<string, string>; raw?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(p, base);
    const text = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const headers: Record<string, string> = { ...(text !== undefined && opts.raw === undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers };
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const s = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: s === '' ? {} : JSON.parse(s) });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

interface Login {
  cookie: string;
  csrf: string;
}

async function login(base: string, name: string, password: string): Promise<Login> {
  const r = await request(base, 'POST', '/api/login', { body: { name, password } });
  assert.is(r.status, 200, JSON.stringify(r.body));
  const set = String(r.headers['set-cookie']?.[0] ?? '');
  return { cookie: set.split(';')[0], csrf: String(r.body.csrf) };
}

const as = (l: Login, csrf = true): Record<string, string> => ({ cookie: l.cookie, ...(csrf ? { 'x-csrf-token': l.csrf } : {}) });

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let m: Management;
let base: string;
let dir: string;
const closers: (() => void)[] = [];

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-mapi-'));
  m = await startManagement({
    dataDir: dir,
    listen: '127.0.0.1:0',
    log: silentLog,
    deviceIds: ['pi-1', 'pi-2', 'x-1'],
    labels: { 'pi-1': { class: 'pi4' }, 'pi-2': { class: 'pi4' }, 'x-1': { class: 'x86' } },
    service: { infoMaxAgeMs: 0, sweepMs: 20 },
    console: { files: null },
  });
  base = m.url as string;
  await m.store.operators.add('ada', 'admin', 'ada password 1');
  await m.store.operators.add('olga', 'operator', 'olga password 1');
  await m.store.operators.add('vic', 'viewer', 'vic password 1');
  for (const id of ['pi-1', 'pi-2']) {
    const b = await connectBoard(m, id, testBoard());
    closers.push(() => b.close());
  }
});

test.after(async () => {
  for (const c of closers) c();
  await m.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const refusals = (): { actor: string; target: string; detail: { code: string; method: string } }[] => m.store.audit.latest(1000).filter((e) => e.action === 'request.refused') as never;

test('login: an HttpOnly SameSite=Strict cookie and a CSRF token; a wrong password is 401 and audited', async () => {
  const r = await request(base, 'POST', '/api/login', { body: { name: 'olga', password: 'olga password 1' } });
  assert.is(r.status, 200);
  const set = String(r.headers['set-cookie']?.[0]);
  assert.match(set, /^hf_session=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Strict$/);
  assert.is(r.body.role, 'operator');
  assert.type(r.body.csrf, 'string');
  const bad = await request(base, 'POST', '/api/login', { body: { name: 'olga', password: 'wrong' } });
  assert.is(bad.status, 401);
  assert.is((bad.body.error as { code: string }).code, 'HF_ERR_LOGIN');
  assert.is(bad.headers['x-holdfast-error'], 'HF_ERR_LOGIN');
  assert.ok(m.store.audit.latest(50).some((e) => e.action === 'login.failed' && e.target === 'olga'));
  const me = await request(base, 'GET', '/api/me', { headers: { cookie: set.split(';')[0] } });
  assert.equal([me.body.name, me.body.role, me.body.csrf], ['olga', 'operator', r.body.csrf]);
});

test('no cookie, a forged cookie: 401; a state change without the CSRF token: 403, audited', async () => {
  assert.is((await request(base, 'GET', '/api/devices')).status, 401);
  const forged = await request(base, 'GET', '/api/devices', { headers: { cookie: 'hf_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
  assert.is(forged.status, 401);
  const olga = await login(base, 'olga', 'olga password 1');
  const before = refusals().length;
  const r = await request(base, 'POST', '/api/jobs', { body: { op: 'info', selector: '*' }, headers: as(olga, false) });
  assert.is(r.status, 403);
  assert.is((r.body.error as { code: string }).code, 'HF_ERR_CSRF');
  const wrong = await request(base, 'POST', '/api/jobs', { body: { op: 'info', selector: '*' }, headers: { cookie: olga.cookie, 'x-csrf-token': 'x'.repeat(43) } });
  assert.is(wrong.status, 403);
  const after = refusals();
  assert.is(after.length, before + 2);
  assert.equal([after[0].actor, after[0].target, after[0].detail.code, after[0].detail.method], ['olga', '/api/jobs', 'HF_ERR_CSRF', 'POST']);
  assert.equal(m.store.jobs.jobs(), [], 'no job was made');
});

test('a viewer may look but not run: 403 HF_ERR_ROLE, audited', async () => {
  const vic = await login(base, 'vic', 'vic password 1');
  const list = await request(base, 'GET', '/api/devices?selector=class%3Dpi4', { headers: as(vic) });
  assert.is(list.status, 200);
  assert.equal((list.body.devices as { id: string }[]).map((d) => d.id).sort(), ['pi-1', 'pi-2']);
  const r = await request(base, 'POST', '/api/jobs', { body: { op: 'info', selector: '*' }, headers: as(vic) });
  assert.is(r.status, 403);
  assert.is((r.body.error as { code: string }).code, 'HF_ERR_ROLE');
  const last = refusals()[0];
  assert.equal([last.actor, last.detail.code], ['vic', 'HF_ERR_ROLE']);
  assert.equal(m.store.jobs.jobs(), []);
});

test('GET /api/gateway: the pair status for a viewer (null without a gateway or a pair); 401 without a login', async () => {
  const vic = await login(base, 'vic', 'vic password 1');
  assert.is((await request(base, 'GET', '/api/gateway')).status, 401);
  const none = await request(base, 'GET', '/api/gateway', { headers: as(vic, false) });
  assert.is(none.status, 200);
  assert.equal(none.body, { pair: null });
  const peers = new MemoryPeers();
  const gw = await Gateway.start({
    http: '127.0.0.1:0',
    devices: null,
    pair: { key: 'pair-key-0123456789', node: 'gw-a', listen: 'mem:a', connect: peers.connect, listenPeers: peers.listenFor(() => 1) },
  });
  const api = m.api as ManageApi;
  try {
    api.gateway = gw;
    const r = await request(base, 'GET', '/api/gateway', { headers: as(vic, false) });
    assert.is(r.status, 200);
    assert.equal(r.body, {
      pair: { role: 'primary', epoch: 1, node: 'gw-a', peer: { up: false }, takeovers: 0, records: 0, heldAnswers: 0, lagRecords: 0, shadowSessions: 0, shadowBytes: 0 },
    });
  } finally {
    api.gateway = null;
    await gw.close();
  }
});

test('an operator runs a job by selector and sees it through; bad requests are refused with their code', async () => {
  const olga = await login(base, 'olga', 'olga password 1');
  const cases: [unknown, number, string][] = [
    [{ op: 'reboot', selector: '*' }, 400, 'HF_ERR_UNKNOWN_OP'],
    [{ op: 'info', selector: 'class=sparc' }, 400, 'HF_ERR_NO_MATCH'],
    [{ op: 'info', selector: 'class==pi4' }, 400, 'HF_ERR_SELECTOR'],
  ];
  for (const [body, status, code] of cases) {
    const r = await request(base, 'POST', '/api/jobs', { body, headers: as(olga) });
    assert.equal([r.status, (r.body.error as { code: string }).code], [status, code], JSON.stringify(body));
  }
  const big = await request(base, 'POST', '/api/jobs', {
    body: { op: 'file.put', args: { path: '/srv/x', data: Buffer.alloc(1024 * 1024 + 1).toString('base64') }, selector: '*' },
    headers: as(olga),
  });
  assert.equal([big.status, (big.body.error as { code: string }).code], [400, 'HF_ERR_OVERSIZE'], 'oversize arguments');
  const notJson = await request(base, 'POST', '/api/jobs', { raw: 'op=info', headers: { ...as(olga), 'content-type': 'text/plain' } });
  assert.equal([notJson.status, (notJson.body.error as { code: string }).code], [400, 'HF_ERR_BODY']);
  const broken = await request(base, 'POST', '/api/jobs', { raw: '{"op":', headers: { ...as(olga), 'content-type': 'application/json' } });
  assert.equal([broken.status, (broken.body.error as { code: string }).code], [400, 'HF_ERR_BODY']);
  assert.equal(m.store.jobs.jobs(), [], 'none of those made a job');
  const made = await request(base, 'POST', '/api/jobs', { body: { op: 'info', selector: 'class=pi4' }, headers: as(olga) });
  assert.is(made.status, 201);
  const id = (made.body.job as { id: string }).id;
  await until('both succeeded', async () => {
    const j = await request(base, 'GET', `/api/jobs/${id}`, { headers: as(olga) });
    return (j.body.targets as { state: string }[]).every((t) => t.state === 'succeeded');
  });
  const j = await request(base, 'GET', `/api/jobs/${id}`, { headers: as(olga) });
  assert.equal((j.body.targets as { deviceId: string }[]).map((t) => t.deviceId).sort(), ['pi-1', 'pi-2']);
  assert.is(((j.body.targets as { result: { target: string } }[])[0].result as { target: string }).target, 'sim');
  const devices = await request(base, 'GET', '/api/devices', { headers: as(olga) });
  const pi1 = (devices.body.devices as { id: string; online: boolean; transport: string; info: { cpu_temperature_c?: unknown } }[]).find((d) => d.id === 'pi-1');
  assert.equal([pi1?.online, pi1?.transport], [true, 'tcp']);
  assert.ok(pi1?.info?.cpu_temperature_c !== undefined, 'an info job updates what the device reported');
  const x1 = (devices.body.devices as { id: string; online: boolean }[]).find((d) => d.id === 'x-1');
  assert.is(x1?.online, false);
  const cancel = await request(base, 'POST', `/api/jobs/${id}/cancel`, { body: {}, headers: as(olga) });
  assert.is(cancel.status, 200, 'cancelling a finished job returns it');
  const nope = await request(base, 'GET', '/api/jobs/j-none', { headers: as(olga) });
  assert.equal([nope.status, (nope.body.error as { code: string }).code], [404, 'HF_ERR_NOT_FOUND']);
});

test('API tokens: made by a logged-in operator, used without cookie or CSRF; no more role than the maker; revoked ones refused', async () => {
  const vic = await login(base, 'vic', 'vic password 1');
  const over = await request(base, 'POST', '/api/tokens', { body: { name: 'ci', role: 'operator' }, headers: as(vic) });
  assert.equal([over.status, (over.body.error as { code: string }).code], [403, 'HF_ERR_ROLE']);
  const olga = await login(base, 'olga', 'olga password 1');
  const t = await request(base, 'POST', '/api/tokens', { body: { name: 'ci' }, headers: as(olga) });
  assert.is(t.status, 201);
  const token = String(t.body.token);
  assert.match(token, /^hft_/);
  const bearer = { authorization: `Bearer ${token}` };
  const made = await request(base, 'POST', '/api/jobs', { body: { op: 'info', selector: 'id=pi-1' }, headers: bearer });
  assert.is(made.status, 201, JSON.stringify(made.body));
  assert.is((made.body.job as { createdBy: string }).createdBy, 'olga');
  m.store.tokens.revoke((t.body.info as { id: number }).id);
  const after = await request(base, 'GET', '/api/devices', { headers: bearer });
  assert.is(after.status, 401);
  const junk = await request(base, 'GET', '/api/devices', { headers: { authorization: 'Basic b2xnYQ==' } });
  assert.is(junk.status, 401);
});

test('the event stream: a hello, then the job and each device outcome as they happen (in targets batches)', async () => {
  const olga = await login(base, 'olga', 'olga password 1');
  const { events, res, close } = await stream(base, { cookie: olga.cookie });
  assert.is(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  try {
    await until('hello', () => events.some((e) => e.event === 'hello'));
    const made = await request(base, 'POST', '/api/jobs', { body: { op: 'config.get', selector: 'class=pi4' }, headers: as(olga) });
    const id = (made.body.job as { id: string }).id;
    const succeeded = (): number =>
      events.filter((e) => e.event === 'targets' && e.data.job === id).flatMap((e) => (e.data.targets as { state: string }[]).filter((t) => t.state === 'succeeded')).length;
    await until('two outcomes', () => succeeded() === 2);
    assert.ok(events.some((e) => e.event === 'job' && e.data.id === id));
  } finally {
    close();
  }
});

/** Reads `GET /api/events` on `base` with `headers`; each event parsed as it comes. */
async function stream(base: string, headers: Record<string, string>): Promise<{ events: { event: string; data: Record<string, unknown> }[]; close: () => void; res: http.IncomingMessage }> {
  const u = new URL('/api/events', base);
  const events: { event: string; data: Record<string, unknown> }[] = [];
  const req = http.get({ host: u.hostname, port: u.port, path: u.pathname, headers });
  const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  let buf = '';
  res.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (ev !== undefined && data !== undefined) events.push({ event: ev, data: JSON.parse(data) });
    }
  });
  return { events, res, close: () => req.destroy() };
}

test('a job to 2,000 devices: every final state on the stream, in batches of at most maxBatchTargets, nobody dropped', async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-mapi-fan-'));
  const ids = Array.from({ length: 2000 }, (_, i) => `f-${String(i).padStart(4, '0')}`);
  // A socket bound of 16 KiB: the 2,000 changes of one turn are far more than that (the hub used to drop the reader here).
  const big = await startManagement({
    dataDir: d,
    listen: '127.0.0.1:0',
    log: silentLog,
    deviceIds: ids,
    service: { infoMaxAgeMs: 0, sweepMs: 20 },
    console: { files: null, sse: { maxBufferBytes: 16_384, maxBatchTargets: 300 } },
  });
  const boards: (() => void)[] = [];
  let s: Awaited<ReturnType<typeof stream>> | null = null;
  try {
    await big.store.operators.add('olga', 'operator', 'olga password 1');
    for (const id of ids.slice(0, 20)) {
      const b = await connectBoard(big, id, testBoard());
      boards.push(() => b.close());
    }
    const url = big.url as string;
    const olga = await login(url, 'olga', 'olga password 1');
    s = await stream(url, { cookie: olga.cookie });
    const { events } = s;
    await until('hello', () => events.some((e) => e.event === 'hello'));
    // 20 online devices run it; the other 1,980 never connect and expire together, in one turn.
    const made = await request(url, 'POST', '/api/jobs', { body: { op: 'config.get', selector: '*', expiresInMs: 600 }, headers: as(olga) });
    assert.is(made.status, 201, JSON.stringify(made.body));
    const id = (made.body.job as { id: string }).id;
    const last = new Map<string, { state: string; errorCode?: string }>();
    const finals = new Map<string, number>();
    let batches = 0;
    const seen = (): number => {
      last.clear();
      finals.clear();
      batches = 0;
      for (const e of events) {
        if (e.event !== 'targets' || e.data.job !== id) continue;
        batches++;
        const targets = e.data.targets as { deviceId: string; state: string; errorCode?: string }[];
        assert.ok(targets.length >= 1 && targets.length <= 300, `a batch of ${targets.length}`);
        assert.is(new Set(targets.map((t) => t.deviceId)).size, targets.length, 'each target at most once in a batch');
        for (const t of targets) {
          last.set(t.deviceId, t);
          if (['succeeded', 'failed', 'timed-out', 'cancelled', 'expired'].includes(t.state)) finals.set(t.deviceId, (finals.get(t.deviceId) ?? 0) + 1);
        }
      }
      return finals.size;
    };
    await until('2,000 final states', () => seen() === 2000, 20_000);
    assert.ok(!events.some((e) => e.event === 'target'), 'no per-target events any more');
    assert.is(big.api?.streams.dropped, 0, 'the reader was not dropped');
    assert.is(big.api?.streams.open, 1);
    for (const [dev, n] of finals) assert.is(n, 1, `${dev}: its final state once`);
    const record = await request(url, 'GET', `/api/jobs/${id}`, { headers: as(olga) });
    for (const t of record.body.targets as { deviceId: string; state: string }[]) assert.is(last.get(t.deviceId)?.state, t.state, `${t.deviceId}: the last batch it is in has its recorded state`);
    const states = [...last.values()].map((t) => t.state);
    assert.is(states.filter((x) => x === 'succeeded').length, 20);
    assert.is(states.filter((x) => x === 'expired').length, 1980);
    assert.ok(batches >= Math.ceil(1980 / 300), `the expired turn split into batches of 300 (${batches} batches)`);
  } finally {
    s?.close();
    for (const c of boards) c();
    await big.close();
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('admins manage operators over the API (audited); others may not', async () => {
  const olga = await login(base, 'olga', 'olga password 1');
  const no = await request(base, 'POST', '/api/operators', { body: { name: 'eve', role: 'admin', password: 'eve password 1' }, headers: as(olga) });
  assert.equal([no.status, (no.body.error as { code: string }).code], [403, 'HF_ERR_ROLE']);
  const ada = await login(base, 'ada', 'ada password 1');
  const bad = await request(base, 'POST', '/api/operators', { body: { name: 'bo', role: 'root', password: 'bo password 1' }, headers: as(ada) });
  assert.equal([bad.status, (bad.body.error as { code: string }).code], [400, 'HF_ERR_BAD_ARGS']);
  const made = await request(base, 'POST', '/api/operators', { body: { name: 'bo', role: 'viewer', password: 'bo password 1' }, headers: as(ada) });
  assert.is(made.status, 201, JSON.stringify(made.body));
  assert.not.ok(JSON.stringify(made.body).includes('scrypt'), 'no password hash in the answer');
  const up = await request(base, 'PUT', '/api/operators/bo', { body: { role: 'operator' }, headers: as(ada) });
  assert.is((up.body.operator as { role: string }).role, 'operator');
  const bo = await login(base, 'bo', 'bo password 1');
  await request(base, 'PUT', '/api/operators/bo', { body: { disabled: true }, headers: as(ada) });
  assert.is((await request(base, 'GET', '/api/me', { headers: as(bo) })).status, 401, 'a disabled operator is logged out');
  const list = await request(base, 'GET', '/api/operators', { headers: as(ada) });
  assert.ok((list.body.operators as { name: string; disabledAt: number | null }[]).some((o) => o.name === 'bo' && o.disabledAt !== null));
  const audit = m.store.audit.latest(50).map((e) => `${e.action}:${e.target}`);
  assert.ok(audit.includes('operator.add:bo') && audit.includes('operator.change:bo'), audit.join(' '));
});

test('admins enable a disabled operator (audited); the old session and API token stay dead; bad changes are HF_ERR_BAD_ARGS', async () => {
  const ada = await login(base, 'ada', 'ada password 1');
  const made = await request(base, 'POST', '/api/operators', { body: { name: 'cy', role: 'operator', password: 'cy password 1' }, headers: as(ada) });
  assert.is(made.status, 201, JSON.stringify(made.body));
  const cy = await login(base, 'cy', 'cy password 1');
  const t = await request(base, 'POST', '/api/tokens', { body: { name: 'cy-ci' }, headers: as(cy) });
  assert.is(t.status, 201);
  const bearer = { authorization: `Bearer ${String(t.body.token)}` };
  for (const body of [{ disabled: 'yes' }, { disabled: 0 }, {}]) {
    const r = await request(base, 'PUT', '/api/operators/cy', { body, headers: as(ada) });
    assert.equal([r.status, (r.body.error as { code: string }).code, r.headers['x-holdfast-error']], [400, 'HF_ERR_BAD_ARGS', 'HF_ERR_BAD_ARGS'], JSON.stringify(body));
  }
  const olga = await login(base, 'olga', 'olga password 1');
  const no = await request(base, 'PUT', '/api/operators/cy', { body: { disabled: true }, headers: as(olga) });
  assert.equal([no.status, (no.body.error as { code: string }).code], [403, 'HF_ERR_ROLE']);
  const noCsrf = await request(base, 'PUT', '/api/operators/cy', { body: { disabled: true }, headers: as(ada, false) });
  assert.equal([noCsrf.status, (noCsrf.body.error as { code: string }).code], [403, 'HF_ERR_CSRF']);
  const ghost = await request(base, 'PUT', '/api/operators/nobody', { body: { disabled: false }, headers: as(ada) });
  assert.equal([ghost.status, (ghost.body.error as { code: string }).code], [404, 'HF_ERR_NOT_FOUND']);

  const off = await request(base, 'PUT', '/api/operators/cy', { body: { disabled: true }, headers: as(ada) });
  assert.is(off.status, 200, JSON.stringify(off.body));
  assert.type((off.body.operator as { disabledAt: unknown }).disabledAt, 'number');
  assert.is((await request(base, 'GET', '/api/me', { headers: as(cy) })).status, 401);
  assert.is((await request(base, 'GET', '/api/devices', { headers: bearer })).status, 401);
  assert.is((await request(base, 'POST', '/api/login', { body: { name: 'cy', password: 'cy password 1' } })).status, 401, 'a disabled operator cannot log in');

  const on = await request(base, 'PUT', '/api/operators/cy', { body: { disabled: false }, headers: as(ada) });
  assert.is(on.status, 200, JSON.stringify(on.body));
  assert.is((on.body.operator as { disabledAt: unknown }).disabledAt, null);
  assert.is((await request(base, 'GET', '/api/me', { headers: as(cy) })).status, 401, 'the session from before the disable stays ended');
  assert.is((await request(base, 'GET', '/api/devices', { headers: bearer })).status, 401, 'the token from before the disable stays revoked');
  const again = await login(base, 'cy', 'cy password 1');
  assert.is((await request(base, 'GET', '/api/me', { headers: as(again) })).body.role, 'operator');
  const changes = m.store.audit
    .latest(50)
    .filter((e) => e.action === 'operator.change' && e.target === 'cy')
    .map((e) => (e.detail as { disabled?: boolean }).disabled);
  assert.equal(changes, [false, true], 'both changes audited, newest first');
});

test('an expired cookie: 401, and an attempt to act with it is audited', async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-mapi-ttl-'));
  const short = await startManagement({ dataDir: d, listen: '127.0.0.1:0', log: silentLog, deviceIds: ['pi-1'], store: { sessions: { ttlMs: 1000 } }, console: { files: null } });
  try {
    await short.store.operators.add('olga', 'operator', 'olga password 1');
    const olga = await login(short.url as string, 'olga', 'olga password 1');
    assert.is((await request(short.url as string, 'GET', '/api/me', { headers: as(olga) })).status, 200);
    await new Promise((r) => setTimeout(r, 1100));
    const me = await request(short.url as string, 'GET', '/api/me', { headers: as(olga) });
    assert.equal([me.status, (me.body.error as { code: string }).code], [401, 'HF_ERR_LOGIN']);
    const act = await request(short.url as string, 'POST', '/api/jobs', { body: { op: 'info', selector: '*' }, headers: as(olga) });
    assert.is(act.status, 401);
    assert.ok(short.store.audit.latest(10).some((e) => e.action === 'request.refused' && (e.detail as { code: string }).code === 'HF_ERR_LOGIN'));
    assert.equal(short.store.jobs.jobs(), []);
  } finally {
    await short.close();
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('logout clears the cookie, ends the session and its event stream', async () => {
  const olga = await login(base, 'olga', 'olga password 1');
  const u = new URL('/api/events', base);
  const req = http.get({ host: u.hostname, port: u.port, path: u.pathname, headers: { cookie: olga.cookie } });
  const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  res.resume();
  const ended = new Promise<void>((resolve) => res.on('end', () => resolve()));
  try {
    const out = await request(base, 'POST', '/api/logout', { body: {}, headers: as(olga) });
    assert.is(out.status, 200);
    assert.match(String(out.headers['set-cookie']?.[0]), /^hf_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict$/);
    await ended;
    assert.is((await request(base, 'GET', '/api/me', { headers: as(olga) })).status, 401, 'the old cookie is dead');
  } finally {
    req.destroy();
  }
});

test('the audit log verifies after all that', async () => {
  const ada = await login(base, 'ada', 'ada password 1');
  const v = await request(base, 'GET', '/api/audit/verify', { headers: as(ada) });
  assert.is(v.body.ok, true, JSON.stringify(v.body));
  const a = await request(base, 'GET', '/api/audit?limit=5', { headers: as(ada) });
  assert.is((a.body.entries as unknown[]).length, 5);
});

test.run();
