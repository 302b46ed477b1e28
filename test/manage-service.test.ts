/**
 * The gateway's management service over real links: loopback pairs with a mux on each end, the
 * device end served by the device's own management server over the sim board (test/support), jobs
 * made by selector, each (job, device) reaching one outcome; offline devices served when they come;
 * a gateway restart mid-job re-sends under the same id and runs nothing twice.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHfError } from '../firmware/errors';
import { loopbackPair } from '../targets/host/app/loopback';
import { Mux } from '../targets/host/app/mux';
import { ManageService, type ManageServiceOptions } from '../targets/host/gateway/manage/service';
import { ManageStore } from '../targets/host/gateway/manage/store';
import { silentLog } from '../targets/node/log';
import { connectBoard, type OnlineBoard, type TestBoard, testBoard } from './support/manage-device';

type Online = OnlineBoard;

const online = (svc: ManageService, id: string, board: TestBoard): Promise<Online> => connectBoard(svc, id, board);

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isHfError(e) ? e.code : String(e);
  }
  return 'no error';
}

function setup(opts: ManageServiceOptions = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-mservice-'));
  const store = ManageStore.open(dir);
  store.devices.ensure(['b1', 'b2', 'b3', 'x1']);
  for (const id of ['b1', 'b2', 'b3']) store.devices.setLabels(id, { site: 'berlin', class: 'pi4' });
  store.devices.setLabels('x1', { site: 'oslo', class: 'x86' });
  const boards = new Map(['b1', 'b2', 'b3', 'x1'].map((id) => [id, testBoard()]));
  const services: ManageService[] = [];
  const sessions: Online[] = [];
  const svcOpts = { infoMaxAgeMs: 0, sweepMs: 20, resendDelayMs: 20, ...opts };
  const service = (): ManageService => {
    const s = new ManageService(store, silentLog, svcOpts);
    services.push(s);
    return s;
  };
  return {
    dir,
    store,
    boards,
    service,
    async online(svc: ManageService, id: string): Promise<Online> {
      const o = await online(svc, id, boards.get(id) as TestBoard);
      sessions.push(o);
      return o;
    },
    done() {
      for (const o of sessions) o.close();
      for (const s of services) s.close();
      store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const state = (svc: ManageService, jobId: string): Record<string, string> => Object.fromEntries(svc.job(jobId).targets.map((t) => [t.deviceId, t.state]));

test('a job by label runs on the matching online devices, and on an offline one when it comes', async () => {
  const s = setup();
  try {
    const svc = s.service();
    await s.online(svc, 'b1');
    await s.online(svc, 'b2');
    await s.online(svc, 'x1');
    const events: string[] = [];
    svc.on('target', (e: { deviceId: string; state: string }) => events.push(`${e.deviceId}:${e.state}`));
    const job = svc.createJob({ op: 'exec', args: { argv: ['/bin/count'] }, selector: 'site=berlin,class=pi4' }, 'op:alice');
    assert.equal(
      svc
        .job(job.id)
        .targets.map((t) => t.deviceId)
        .sort(),
      ['b1', 'b2', 'b3'],
    );
    await until('b1 and b2 succeeded', () => {
      const st = state(svc, job.id);
      return st.b1 === 'succeeded' && st.b2 === 'succeeded';
    });
    assert.is(state(svc, job.id).b3, 'queued', 'b3 is offline: its target waits');
    const b1 = svc.job(job.id).targets.find((t) => t.deviceId === 'b1')?.result as { stdout: string; exitCode: number } | undefined;
    assert.is(b1?.stdout, Buffer.from('counted\n').toString('base64'));
    assert.is(b1?.exitCode, 0);
    for (const st of ['sent', 'succeeded']) assert.ok(events.includes(`b1:${st}`), `b1 went through ${st}: ${events.join(' ')}`);
    await s.online(svc, 'b3');
    await until('b3 succeeded', () => state(svc, job.id).b3 === 'succeeded');
    for (const id of ['b1', 'b2', 'b3']) assert.equal(s.boards.get(id)?.started, [job.id], `${id} ran the job once`);
    assert.equal(s.boards.get('x1')?.started, [], 'x1 does not match');
    const outcomes = s.store.audit.latest(100).filter((e) => e.action === 'job.outcome');
    assert.is(outcomes.length, 3, 'one audited outcome per device');
    const made = s.store.audit.latest(100).find((e) => e.action === 'job.create');
    assert.equal((made?.detail as { devices: string[] } | undefined)?.devices, ['b1', 'b2', 'b3']);
    assert.is(made?.actor, 'op:alice');
  } finally {
    s.done();
  }
});

test('bad job requests are refused with their code and store nothing', async () => {
  const s = setup();
  try {
    const svc = s.service();
    const cases: [Record<string, unknown>, string][] = [
      [{ op: 'reboot', selector: '*' }, 'HF_ERR_UNKNOWN_OP'],
      [{ op: 'exec', args: { argv: 'ls' }, selector: '*' }, 'HF_ERR_BAD_ARGS'],
      [{ op: 'info', selector: 'site=nowhere' }, 'HF_ERR_NO_MATCH'],
      [{ op: 'info', selector: 'site==x' }, 'HF_ERR_SELECTOR'],
      [{ op: 'info', selector: 42 }, 'HF_ERR_SELECTOR'],
      [{ op: 'info', selector: '*', timeoutMs: -1 }, 'HF_ERR_BAD_ARGS'],
    ];
    for (const [req, code] of cases)
      assert.is(
        codeOf(() => svc.createJob(req as never, 'op:alice')),
        code,
        JSON.stringify(req),
      );
    assert.equal(s.store.jobs.jobs(), []);
    assert.equal(
      s.store.audit.latest(100).filter((e) => e.action === 'job.create'),
      [],
    );
    const ok = svc.createJob({ op: 'info', selector: 'id=x1' }, 'op:alice');
    assert.is(s.store.jobs.jobs().length, 1, 'a good request after the bad ones is taken');
    assert.is(svc.job(ok.id).targets.length, 1);
  } finally {
    s.done();
  }
});

test('a gateway restart mid-job re-sends under the same id and runs nothing twice', async () => {
  const s = setup();
  try {
    const svc1 = s.service();
    const b1 = await s.online(svc1, 'b1');
    const job = svc1.createJob({ op: 'exec', args: { argv: ['/bin/sleep', '300'] }, selector: 'id=b1|b2' }, 'op:alice');
    await until('b1 running', () => state(svc1, job.id).b1 === 'running');
    // The gateway goes away mid-run: its sessions end with it; the device's run goes on.
    svc1.close();
    b1.close();
    const svc2 = s.service();
    assert.equal(state(svc2, job.id), { b1: 'queued', b2: 'queued' }, 'pending targets are queued again after a restart');
    await s.online(svc2, 'b1');
    await s.online(svc2, 'b2');
    await until('both succeeded', () => {
      const st = state(svc2, job.id);
      return st.b1 === 'succeeded' && st.b2 === 'succeeded';
    });
    assert.equal(s.boards.get('b1')?.started, [job.id], 'b1 ran it once: the re-send got the journaled answer');
    assert.equal(s.boards.get('b2')?.started, [job.id]);
    const t1 = svc2.job(job.id).targets.find((t) => t.deviceId === 'b1');
    assert.ok((t1?.sends ?? 0) >= 2, `b1 was sent the command again (sends ${t1?.sends})`);
    assert.is(s.store.audit.latest(100).filter((e) => e.action === 'job.outcome').length, 2, 'one outcome each');
  } finally {
    s.done();
  }
});

test('a finished job stays finished across a restart', async () => {
  const s = setup();
  try {
    const svc1 = s.service();
    await s.online(svc1, 'x1');
    const job = svc1.createJob({ op: 'info', selector: 'id=x1' }, 'op:alice');
    await until('x1 succeeded', () => state(svc1, job.id).x1 === 'succeeded');
    svc1.close();
    const svc2 = s.service();
    await s.online(svc2, 'x1');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(state(svc2, job.id), { x1: 'succeeded' });
    assert.equal(s.boards.get('x1')?.started, [job.id]);
  } finally {
    s.done();
  }
});

test('cancel, expiry and timeout each give their own outcome', async () => {
  const s = setup();
  try {
    const svc = s.service();
    const cancelled = svc.createJob({ op: 'info', selector: 'id=b1' }, 'op:alice');
    const expiring = svc.createJob({ op: 'info', selector: 'id=b2', expiresInMs: 100 }, 'op:alice');
    svc.cancel(cancelled.id, 'op:bob');
    assert.equal(state(svc, cancelled.id), { b1: 'cancelled' });
    await until('b2 expired', () => state(svc, expiring.id).b2 === 'expired');
    await s.online(svc, 'b1');
    await s.online(svc, 'b2');
    const slow = svc.createJob({ op: 'exec', args: { argv: ['/bin/sleep', '2000'] }, selector: 'id=b3', timeoutMs: 150 }, 'op:alice');
    await s.online(svc, 'b3');
    await until('b3 timed out', () => state(svc, slow.id).b3 === 'timed-out').catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(svc.job(slow.id).targets)}`);
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.boards.get('b1')?.started, [], 'a cancelled target is never sent');
    assert.equal(s.boards.get('b2')?.started, [], 'an expired target is never sent');
    assert.equal(s.boards.get('b3')?.started, [slow.id]);
    assert.is(
      codeOf(() => svc.cancel('j-none', 'op:bob')),
      'HF_ERR_NOT_FOUND',
    );
    const after = svc.cancel(cancelled.id, 'op:bob');
    assert.is(after.id, cancelled.id, 'cancelling again returns the job unchanged');
    assert.is(s.store.audit.latest(100).filter((e) => e.action === 'job.cancel').length, 1);
  } finally {
    s.done();
  }
});

test('a device without management is recorded as unmanaged and its targets wait', async () => {
  const s = setup();
  try {
    const svc = s.service();
    const pair = loopbackPair({ deviceId: 'x1' });
    const gw = await pair.gateway;
    const gmux = new Mux(gw, { role: 'gateway' });
    const dmux = new Mux(pair.device, { role: 'device' }); // no 'stream' listener: every OPEN refused
    gmux.on('error', () => {});
    dmux.on('error', () => {});
    svc.attach({ deviceId: 'x1', sessionId: 's-x1', transport: 'http', once: (e, f) => gw.once(e, f) }, gmux);
    const job = svc.createJob({ op: 'info', selector: 'id=x1' }, 'op:alice');
    await until('x1 unmanaged', () => svc.devices('id=x1')[0]?.managed === false);
    const v = svc.devices('id=x1')[0];
    assert.is(v.online, true);
    assert.is(v.transport, 'http');
    assert.equal(state(svc, job.id), { x1: 'queued' });
    gmux.destroy();
    dmux.destroy();
    gw.destroy();
    pair.device.destroy();
    pair.stop();
    await until('x1 offline', () => svc.devices('id=x1')[0]?.online === false);
  } finally {
    s.done();
  }
});

test.run();
