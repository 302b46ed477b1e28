/**
 * The device's executor (firmware/manage/executor.ts) and its journal (command-journal.ts) over the
 * sim target's Management and memory storage: every operation, every refusal with its code, policy
 * from the device's config, and at most once — a repeated id, a re-send while running, a restart in
 * the middle (a new executor over the same storage), `restart` itself, a bounded and torn journal.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Answer, type Command, decodeCommand, decodeReply, encodeCommand, encodeReply } from '../firmware/manage/command';
import { CommandJournal } from '../firmware/manage/command-journal';
import { Executor, type ExecutorOptions } from '../firmware/manage/executor';
import type { Management, RunRequest, RunResult } from '../hal/management';
import { SimClock } from '../targets/sim/clock';
import { SimGpio } from '../targets/sim/gpio';
import { SimManagement, type SimManagementOptions } from '../targets/sim/manage';
import { MemoryStorage } from '../targets/sim/storage';
import { SimSystem } from '../targets/sim/system';
import { code } from './support/errors';

const CONFIG = {
  id: 'dev-1',
  manage: { exec: ['/usr/bin/uptime', '/bin/yes', '/bin/sleep', ['/bin/systemctl', 'restart', 'app']], files: ['/srv/app'] },
};

function board(opts: Partial<SimManagementOptions> = {}): SimManagement {
  const clock = new SimClock();
  return new SimManagement({
    system: new SimSystem(clock),
    gpio: new SimGpio(),
    config: CONFIG,
    dirs: ['/srv/app', '/etc'],
    files: { '/etc/passwd': new TextEncoder().encode('root:x:0:0') },
    programs: {
      '/usr/bin/uptime': () => ({ stdout: ' 10:00:00 up 1 day\n' }),
      '/bin/yes': () => ({ stdout: 'y\n'.repeat(100_000) }),
      '/bin/sleep': (argv) => ({ durationMs: Number(argv[1]) * 1000 }),
      '/bin/systemctl': () => ({ exitCode: 0 }),
      '/bin/sh': () => ({ stdout: 'from a shell' }),
    },
    ...opts,
  });
}

let n = 0;
const cmd = (op: string, args: Record<string, unknown> = {}, id = `c${++n}`, deadlineMs = 60_000): Command => ({ id, op, args, deadlineMs });
const errCode = (a: Answer): string => ('error' in a ? a.error.code : 'ok');
const ok = (a: Answer): Record<string, unknown> => {
  assert.ok('ok' in a, `expected ok, got ${JSON.stringify(a)}`);
  return (a as { ok: Record<string, unknown> }).ok;
};

test('info, gpio and config operations', async () => {
  const m = board();
  const ex = new Executor(m, new MemoryStorage());
  const info = ok(await ex.execute(cmd('info')));
  assert.is(info.model, 'holdfast sim board');
  assert.is(info.target, 'sim');
  ok(await ex.execute(cmd('gpio.write', { chip: 'sim-gpio', line: 3, value: 1 })));
  assert.equal(ok(await ex.execute(cmd('gpio.read', { chip: 'sim-gpio', line: 3 }))), { value: 1 });
  assert.is(errCode(await ex.execute(cmd('gpio.read', { chip: 'nope', line: 3 }))), 'HF_ERR_OPTION', "the HAL's own code comes through");
  assert.equal(ok(await ex.execute(cmd('config.get'))).config, CONFIG);
  const next = { ...CONFIG, id: 'dev-2' };
  ok(await ex.execute(cmd('config.set', { config: next })));
  assert.equal(m.readConfig(), next);
  assert.is(errCode(await ex.execute(cmd('config.set', { config: { manage: { exec: 'ls' } } }))), 'HF_ERR_BAD_ARGS', 'a malformed manage section is refused');
  assert.equal(m.readConfig(), next, 'and nothing was written');
});

test('exec: allowed programs run by argv; the rest refused with HF_ERR_NOT_ALLOWED and not run', async () => {
  const m = board();
  const ex = new Executor(m, new MemoryStorage());
  const r = ok(await ex.execute(cmd('exec', { argv: ['/usr/bin/uptime'] })));
  assert.equal([r.exitCode, r.signal, new TextDecoder().decode(r.stdout as Uint8Array), r.truncated], [0, null, ' 10:00:00 up 1 day\n', false]);
  ok(await ex.execute(cmd('exec', { argv: ['/bin/systemctl', 'restart', 'app'] })));
  const refused = await ex.execute(cmd('exec', { argv: ['/bin/systemctl', 'stop', 'app'] }));
  assert.is(errCode(refused), 'HF_ERR_NOT_ALLOWED');
  assert.is(errCode(await ex.execute(cmd('exec', { argv: ['/bin/rm', '-rf', '/'] }))), 'HF_ERR_NOT_ALLOWED');
  assert.is(errCode(await ex.execute(cmd('exec', { shell: 'uptime' }))), 'HF_ERR_NOT_ALLOWED', 'no shell unless the config says so');
  assert.equal(
    m.ran.map((a) => a[0]),
    ['/usr/bin/uptime', '/bin/systemctl'],
    'nothing refused ran',
  );
  const sh = board({ config: { manage: { shell: true } } });
  assert.is(new TextDecoder().decode(ok(await new Executor(sh, new MemoryStorage()).execute(cmd('exec', { shell: 'uptime' }))).stdout as Uint8Array), 'from a shell');
  const none = board({ config: {} });
  assert.is(errCode(await new Executor(none, new MemoryStorage()).execute(cmd('exec', { argv: ['/usr/bin/uptime'] }))), 'HF_ERR_NOT_ALLOWED', 'no manage section: nothing allowed');
  const broken = board({ config: { manage: { exec: 5 } } });
  assert.is(errCode(await new Executor(broken, new MemoryStorage()).execute(cmd('exec', { argv: ['/usr/bin/uptime'] }))), 'HF_ERR_NOT_ALLOWED', 'a malformed manage section fails closed');
});

test('exec: output capped at maxExecOutputBytes, a program past its time is HF_ERR_CMD_TIMEOUT, the deadline caps the time', async () => {
  const ex = new Executor(board(), new MemoryStorage(), { limits: { maxExecOutputBytes: 1000 } });
  const r = ok(await ex.execute(cmd('exec', { argv: ['/bin/yes'] })));
  assert.is((r.stdout as Uint8Array).length, 1000);
  assert.is(r.truncated, true);
  const slow = await ex.execute(cmd('exec', { argv: ['/bin/sleep', '5'], timeoutMs: 2000 }));
  assert.is(errCode(slow), 'HF_ERR_CMD_TIMEOUT');
  assert.ok('error' in slow && slow.error.message.includes('killed after 2000 ms'), JSON.stringify(slow));
  const capped = await ex.execute(cmd('exec', { argv: ['/bin/sleep', '3'], timeoutMs: 10_000 }, undefined, 1500));
  assert.ok('error' in capped && capped.error.message.includes('killed after 1500 ms'), JSON.stringify(capped));
  ok(await ex.execute(cmd('exec', { argv: ['/bin/sleep', '1'], timeoutMs: 10_000 })));
});

test('files: put and get under the allowed directories; outside, `..` and oversize refused', async () => {
  const m = board();
  const ex = new Executor(m, new MemoryStorage(), { limits: { maxFileBytes: 64 } });
  const data = new Uint8Array([1, 2, 3]);
  assert.equal(ok(await ex.execute(cmd('file.put', { path: '/srv/app/a.bin', data, mode: 0o600 }))), { bytes: 3 });
  assert.equal(m.peek('/srv/app/a.bin'), { data, mode: 0o600 });
  assert.equal(ok(await ex.execute(cmd('file.get', { path: '/srv/app/x/../a.bin' }))).data, data);
  for (const path of ['/etc/passwd', '/srv/app/../../etc/passwd', '/srv/application/a', '/srv/app']) assert.is(errCode(await ex.execute(cmd('file.put', { path, data }))), 'HF_ERR_NOT_ALLOWED', path);
  assert.is(errCode(await ex.execute(cmd('file.get', { path: '/srv/app/../../etc/passwd' }))), 'HF_ERR_NOT_ALLOWED');
  assert.is(new TextDecoder().decode(m.peek('/etc/passwd')?.data), 'root:x:0:0', 'untouched');
  assert.is(errCode(await ex.execute(cmd('file.put', { path: '/srv/app/big', data: new Uint8Array(65) }))), 'HF_ERR_OVERSIZE');
  assert.is(errCode(await ex.execute(cmd('file.get', { path: '/srv/app/none' }))), 'HF_ERR_NOT_FOUND');
  assert.is(errCode(await ex.execute(cmd('file.put', { path: '/srv/app/no/dir/f', data }))), 'HF_ERR_NOT_FOUND');
});

test('unknown operations, bad arguments and update: answered with their codes', async () => {
  const ex = new Executor(board(), new MemoryStorage());
  assert.is(errCode(await ex.execute(cmd('format-disk'))), 'HF_ERR_UNKNOWN_OP');
  assert.is(errCode(await ex.execute(cmd('gpio.read', { chip: 'x', line: 'one' }))), 'HF_ERR_BAD_ARGS');
  assert.is(errCode(await ex.execute(cmd('update', { bundle: new Uint8Array(4), sha256: '0'.repeat(64) }))), 'HF_ERR_UNSUPPORTED');
});

test('at most once: a repeated id is answered from the record without running; an id reused for another op is refused', async () => {
  const m = board();
  const storage = new MemoryStorage();
  const ex = new Executor(m, storage);
  const first = await ex.execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'once'));
  const again = await ex.execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'once'));
  assert.equal(again, first);
  assert.is(m.ran.length, 1);
  const later = await new Executor(m, storage).execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'once'));
  assert.equal(later, first, 'after a restart, from the journal');
  assert.is(m.ran.length, 1);
  assert.is(errCode(await ex.execute(cmd('info', {}, 'once'))), 'HF_ERR_COMMAND');
  // Refusals are recorded too: the same id gets the same refusal.
  const r1 = await ex.execute(cmd('exec', { argv: ['/bin/rm'] }, 'refused'));
  assert.equal(await ex.execute(cmd('exec', { argv: ['/bin/rm'] }, 'refused')), r1);
});

/** A Management whose programs wait until the test lets them finish. */
function gated(m: SimManagement): { mgmt: Management; release: () => void; calls: () => number } {
  let release = () => {};
  let calls = 0;
  const mgmt: Management = Object.create(m);
  mgmt.run = (req: RunRequest): Promise<RunResult> => {
    calls++;
    return new Promise((resolve) => {
      release = () => resolve(m.run(req));
    });
  };
  return { mgmt, release: () => release(), calls: () => calls };
}

test('a re-send while the command runs gets the answer of that same run', async () => {
  const g = gated(board());
  const ex = new Executor(g.mgmt, new MemoryStorage());
  const accepted: string[] = [];
  const a = ex.execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'slow'), (id) => accepted.push(id));
  await Promise.resolve();
  const b = ex.execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'slow'));
  assert.equal(accepted, ['slow'], 'accepted once, before it finished');
  g.release();
  assert.equal(await b, await a);
  assert.is(g.calls(), 1);
});

test('a restart while running: the id is answered HF_ERR_INTERRUPTED and never run again', async () => {
  const storage = new MemoryStorage();
  const g = gated(board());
  const before = new Executor(g.mgmt, storage);
  void before.execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'mid'));
  await Promise.resolve();
  assert.is(g.calls(), 1);
  // The device stops here (the promise never settles); a new process opens the same storage.
  const m = board();
  const after = new Executor(m, storage);
  assert.equal(after.interrupted, ['mid']);
  const a = await after.execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'mid'));
  assert.is(errCode(a), 'HF_ERR_INTERRUPTED');
  assert.ok('error' in a && a.error.message.includes('not run again'));
  assert.is(m.ran.length, 0);
  assert.equal(await new Executor(m, storage).execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, 'mid')), a, 'and so it stays');
  assert.equal(new Executor(m, storage).interrupted, [], 'answered once, recorded');
});

test('restart: answered and recorded first, then the board restarts; the repeated id does not restart again', async () => {
  const storage = new MemoryStorage();
  const m = board();
  const ex = new Executor(m, storage, { restartDelayMs: 250 });
  assert.equal(ok(await ex.execute(cmd('restart', {}, 'r1'))), { delayMs: 250 });
  assert.equal(m.restarts, [250]);
  const after = new Executor(m, storage, { restartDelayMs: 250 });
  assert.equal(ok(await after.execute(cmd('restart', {}, 'r1'))), { delayMs: 250 });
  assert.equal(m.restarts, [250], 'not restarted twice');
  assert.equal(after.interrupted, []);
});

test('journal: bounded to keepIds, large answers not kept, a torn tail ignored', async () => {
  const storage = new MemoryStorage();
  const m = board({ files: { '/srv/app/big': new Uint8Array(5000) } });
  const opts: ExecutorOptions = { journal: { keepIds: 4, maxKeptAnswerBytes: 1024 } };
  const ex = new Executor(m, storage, opts);
  for (let i = 0; i < 20; i++) ok(await ex.execute(cmd('exec', { argv: ['/usr/bin/uptime'] }, `k${i}`)));
  const j = new CommandJournal(storage, { keepIds: 4 });
  assert.is(j.size, 4);
  assert.ok(j.get('k19') !== undefined && j.get('k15') === undefined);
  assert.ok(storage.size('manage') < 2000, `journal stays small: ${storage.size('manage')} bytes`);

  const big = await ex.execute(cmd('file.get', { path: '/srv/app/big' }, 'big'));
  assert.is((ok(big).data as Uint8Array).length, 5000, 'the first answer is whole');
  assert.is(errCode(await ex.execute(cmd('file.get', { path: '/srv/app/big' }, 'big'))), 'HF_ERR_ANSWER_NOT_KEPT');

  const s2 = new MemoryStorage();
  const e2 = new Executor(m, s2);
  ok(await e2.execute(cmd('info', {}, 'i1')));
  ok(await e2.execute(cmd('info', {}, 'i2')));
  s2.cutTail('manage', 3);
  const reopened = new CommandJournal(s2);
  assert.ok(reopened.get('i1')?.answer !== null && 'ok' in (reopened.get('i1')?.answer ?? {}), 'the records before the torn one are kept');
  assert.equal(reopened.interrupted, ['i2'], 'i2 started and its answer was torn: it ran, so it is interrupted, not run again');
  s2.cutTail('manage', 10_000);
  assert.is(new CommandJournal(s2).size, 0, 'nothing readable: an empty journal');
  assert.is(
    code(() => new CommandJournal(s2, { keepIds: 0 })),
    'HF_ERR_OPTION',
  );
});

test('storage that fails: execute rejects with HF_ERR_STORAGE and runs nothing', async () => {
  const storage = new MemoryStorage();
  const m = board();
  const ex = new Executor(m, storage);
  storage.broken = true;
  let got = '';
  await ex.execute(cmd('exec', { argv: ['/usr/bin/uptime'] })).catch((e) => {
    got = e.code;
  });
  assert.is(got, 'HF_ERR_STORAGE');
  assert.is(m.ran.length, 0);
});

test('over the wire: a command as bytes in, its answer as bytes out, both items checked', async () => {
  const ex = new Executor(board(), new MemoryStorage());
  const accepted: Uint8Array[] = [];
  const bytes = encodeCommand({ id: 'w1', op: 'exec', args: { argv: ['/usr/bin/uptime'] }, deadlineMs: 5000 });
  const answer = await ex.execute(decodeCommand(bytes), (id) => accepted.push(encodeReply({ id, accepted: true })));
  const back = decodeReply(encodeReply(answer));
  assert.equal(decodeReply(accepted[0]), { id: 'w1', accepted: true });
  assert.ok('ok' in back && back.id === 'w1' && new TextDecoder().decode(back.ok.stdout as Uint8Array).includes('up 1 day'), JSON.stringify(back));
  const info = decodeReply(encodeReply(await ex.execute(decodeCommand(encodeCommand({ id: 'w2', op: 'info', args: {}, deadlineMs: 5000 })))));
  assert.ok('ok' in info && info.ok.model === 'holdfast sim board', 'info results encode as CBOR');
});

test.run();
