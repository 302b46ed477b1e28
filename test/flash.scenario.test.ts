/**
 * `holdfast flash` end to end: a real OpenSSH sshd of the test's own (127.0.0.1, a free port, a
 * throw-away host key and user key) plays the board, `bin/holdfast gateway` the gateway. This
 * machine has no systemd, so flash takes the by-hand path (setsid nohup, pidfile).
 *
 *  1. a first flash: every step ok; files and modes; the key on no command line; the pidfile names
 *     the launcher, whose child runs the flashed bundle (its copy in PREFIX/launcher/bundles) and
 *     writes the status: open; the gateway saw the session; 1 MiB through the flashed device's
 *     --forward port arrives intact.
 *  2. flashing a new build again (an update): both bundles replaced, the new build current in the
 *     launcher's state and the old one previous, the old launcher and its child stopped, the device
 *     back with an open session (the same one, resumed from PREFIX/state, or a new one).
 *  3. failing steps: a wrong ssh key stops at step 2, a prefix that cannot be created at step 3;
 *     each names its step and exits 1. A bad flag stops before anything runs (exit 2).
 *  5. the management operation `update` through the gateway's console API: the flashed board takes
 *     the new bundle, its launcher tries and keeps it; the launcher itself is not restarted.
 *
 * Without /usr/sbin/sshd or ssh the tests print SKIPPED (apt-get install openssh-server
 * openssh-client), unless HOLDFAST_REQUIRE_SSHD=1 (.ci/run sets it; it installs them).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../firmware/errors';
import { within, sleep } from './support/within';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { alive, CLI, Cleanup, Proc, devicesFile, freePort, hashServer, holdfast, pushThrough, randomData, ROOT, sha256, tmpDir } from './support/host';
import { SSHD, ensurePrivsepDir, sshKeygen, writeSshdConfig } from '../tools/throwaway-sshd';

const ID = 'pi-flash';
/** Random, so it cannot turn up anywhere by chance. */
const KEY = `k-${randomBytes(12).toString('hex')}`;

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, name)));
}

/** Like tinyproxyAvailable: skip with a notice, or fail when HOLDFAST_REQUIRE_SSHD=1. */
function sshdAvailable(label: string): boolean {
  const missing = [fs.existsSync(SSHD) ? null : SSHD, ...['ssh', 'scp', 'ssh-keygen'].map((b) => (onPath(b) ? null : b))].filter((x) => x !== null);
  if (missing.length === 0) return true;
  const what = `${missing.join(', ')} not installed (apt-get install openssh-server openssh-client; .ci/run does)`;
  if (process.env.HOLDFAST_REQUIRE_SSHD === '1') throw hfError(ErrorCode.UNSUPPORTED, `${label}: ${what}`);
  console.log(`  SKIPPED ${label}: ${what}`);
  return false;
}

interface Board {
  port: number;
  /** The user key sshd lets in, and one it does not. */
  identity: string;
  wrongIdentity: string;
  knownHosts: string;
  user: string;
  sshd: Proc;
}

/** An sshd of our own on 127.0.0.1, in the foreground (-D), logging to stderr (-e), killed by its PID. */
async function startSshd(c: Cleanup, dir: string): Promise<Board> {
  const user = os.userInfo().username;
  for (const k of ['host_key', 'user_key', 'wrong_key']) sshKeygen(path.join(dir, k), 'holdfast-flash-test');
  fs.copyFileSync(path.join(dir, 'user_key.pub'), path.join(dir, 'authorized_keys'));
  ensurePrivsepDir();
  const hostPub = fs.readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = writeSshdConfig(dir, port, { sftp: true }); // scp speaks SFTP since OpenSSH 9.0
    const sshd = new Proc(SSHD, ['-D', '-e', '-f', conf], c);
    c.add(() => sshd.kill('SIGTERM'));
    try {
      await Promise.race([sshd.waitFor(/Server listening on 127\.0\.0\.1 port/, 5000, 0), sshd.exited.then((code) => Promise.reject(new Error(`sshd exited (${code}):\n${sshd.log}`)))]);
    } catch (e) {
      sshd.kill('SIGKILL');
      if (attempt === 2) throw e;
      continue;
    }
    const knownHosts = path.join(dir, 'known_hosts');
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
    return { port, identity: path.join(dir, 'user_key'), wrongIdentity: path.join(dir, 'wrong_key'), knownHosts, user, sshd };
  }
  throw new Error('unreachable');
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

/** Every process's command line that contains `needle`, sampled every 10 ms until stopped. */
function watchCommandLines(needle: string, exclude: () => number[]): { stop: () => { hits: string[]; samples: number; sshSeen: number } } {
  const hits = new Set<string>();
  const sshPids = new Set<string>();
  let samples = 0;
  const scan = (): void => {
    samples++;
    let names: string[];
    try {
      names = fs.readdirSync('/proc');
    } catch {
      return;
    }
    const skip = new Set(exclude().map(String).concat(String(process.pid)));
    for (const n of names) {
      if (!/^\d+$/.test(n) || skip.has(n)) continue;
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${n}/cmdline`, 'latin1').replace(/\0/g, ' ');
      } catch {
        continue;
      }
      if (/^(ssh|scp) /.test(cmd) || / sh -c /.test(cmd)) sshPids.add(n);
      if (!cmd.includes(needle)) continue;
      // A child forked by an excluded process shows its parent's command line until it execs, and a
      // read during the exec itself can catch a mix of the old and the new one: look again.
      const ppid = /^\d+ \(.*\) \S (\d+)/.exec(readOr(`/proc/${n}/stat`))?.[1];
      if (ppid !== undefined && skip.has(ppid)) {
        const parent = readOr(`/proc/${ppid}/cmdline`).replace(/\0/g, ' ');
        if (parent === cmd) continue;
        const again = readOr(`/proc/${n}/cmdline`).replace(/\0/g, ' ');
        if (again === parent || !again.includes(needle)) continue;
        cmd = again;
      }
      hits.add(`${n}: ${cmd}`);
    }
  };
  const timer = setInterval(scan, 10);
  return {
    stop: () => {
      clearInterval(timer);
      scan();
      return { hits: [...hits], samples, sshSeen: sshPids.size };
    },
  };
}

interface World {
  c: Cleanup;
  dir: string;
  board: Board;
  gw: Proc;
  gwHttp: number;
  gwTcp: number;
  sink: { port: number; digests: string[]; bytes: number[] };
  keyFile: string;
  prefix: string;
  forwardPort: number;
  /** The gateway's console (management API). */
  consolePort: number;
}

let world: World | null = null;

/** Starts `holdfast flash` against the test's sshd. */
function startFlash(w: World, extra: string[], opts: { identity?: string; prefix?: string; key?: 'file' | 'flag' } = {}): Proc {
  const key = opts.key === 'flag' ? ['--key', KEY] : ['--key-file', w.keyFile];
  return holdfast(
    [
      'flash',
      '--host',
      `${w.board.user}@127.0.0.1`,
      '--port',
      String(w.board.port),
      '--identity',
      opts.identity ?? w.board.identity,
      '--known-hosts',
      w.board.knownHosts,
      '--gateway',
      `http://127.0.0.1:${w.gwHttp}`,
      '--tcp',
      `127.0.0.1:${w.gwTcp}`,
      '--id',
      ID,
      ...key,
      '--forward',
      `${w.forwardPort}:127.0.0.1:${w.sink.port}`,
      '--prefix',
      opts.prefix ?? w.prefix,
      '--wait-s',
      '20',
      ...extra,
    ],
    w.c,
    { HOLDFAST_KEY: '' },
  );
}

/** Runs `holdfast flash` to its end: exit status and output. */
async function flash(w: World, extra: string[], opts: { identity?: string; prefix?: string; key?: 'file' | 'flag' } = {}): Promise<{ code: number | null; out: string }> {
  const p = startFlash(w, extra, opts);
  const code = await p.exited;
  return { code, out: p.log };
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

function readPid(w: World): number {
  return Number(fs.readFileSync(path.join(w.prefix, 'device.pid'), 'utf8').trim());
}

function cmdline(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
  } catch {
    return null;
  }
}

/** The parent process id of `pid`, or null when it is gone. */
function parentOf(pid: number): number | null {
  const m = /^\d+ \(.*\) \S (\d+)/.exec(readOr(`/proc/${pid}/stat`));
  return m === null ? null : Number(m[1]);
}

/** The device's pid from PREFIX/status.json (the launcher's child writes it). */
function statusOf(w: World): { pid: number; state: string; session: string; transport: string } {
  return JSON.parse(fs.readFileSync(path.join(w.prefix, 'status.json'), 'utf8'));
}

/** Stops a process of ours by its PID: SIGTERM, SIGKILL after 5 s. */
async function stopPid(pid: number): Promise<void> {
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** Stops the flashed launcher by its pidfile (that PID only, only if it is ours), then its device if it is left. */
async function stopDevice(w: World): Promise<void> {
  let pid: number;
  let child: number | null = null;
  try {
    pid = readPid(w);
    child = statusOf(w).pid;
  } catch {
    return;
  }
  const cmd = cmdline(pid);
  const childOurs = child !== null && parentOf(child) === pid && (cmdline(child) ?? '').includes(path.join(w.prefix, 'launcher', 'bundles'));
  if (!Number.isInteger(pid) || pid <= 0 || cmd === null || !cmd.includes(path.join(w.prefix, 'holdfast-launcher.js'))) return;
  await stopPid(pid);
  if (childOurs && child !== null && alive(child)) await stopPid(child);
}

/** The launcher's state on the board (PREFIX/launcher/state.json). */
function launcherState(w: World): { phase: string; current: string; previous: string | null; installed: string | null; last: { result: string } | null } {
  return JSON.parse(fs.readFileSync(path.join(w.prefix, 'launcher', 'state.json'), 'utf8'));
}

const shaOf = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/**
 * Checks that the pidfile names a launcher running the flashed bundle, and that the device (its
 * child) writes the status; returns both pids.
 */
function checkLauncherAndChild(w: World): { launcher: number; device: number } {
  const p = w.prefix;
  const launcher = readPid(w);
  const cmd = cmdline(launcher);
  assert.ok(cmd !== null, `launcher pid ${launcher} runs`);
  assert.match(cmd!, /^\/\S*node /, 'started with the absolute path of node on the board');
  assert.ok(
    cmd!.endsWith(` ${path.join(p, 'holdfast-launcher.js')} --dir ${path.join(p, 'launcher')} --bundle ${path.join(p, 'holdfast-device.js')} -- device --config ${path.join(p, 'device.json')}`),
    cmd!,
  );
  assert.not.ok(cmd!.includes(KEY));
  const sha = shaOf(path.join(p, 'holdfast-device.js'));
  const device = statusOf(w).pid;
  assert.is(parentOf(device), launcher, "the device writing the status is the launcher's child");
  const dcmd = cmdline(device) ?? '';
  assert.ok(dcmd.endsWith(` ${path.join(p, 'launcher', 'bundles', `${sha}.js`)} device --config ${path.join(p, 'device.json')}`), dcmd);
  assert.not.ok(dcmd.includes(KEY));
  const env = readOr(`/proc/${device}/environ`).split('\0');
  assert.ok(env.includes(`HOLDFAST_LAUNCHER_DIR=${path.join(p, 'launcher')}`) && env.includes(`HOLDFAST_BUNDLE_SHA256=${sha}`), 'the device knows its launcher');
  return { launcher, device };
}

/** Runs the CLI with `input` on its stdin; its exit status. */
function runCli(args: string[], input: string): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['pipe', 'ignore', 'inherit'] });
    c.on('exit', (code) => resolve(code));
    c.stdin.end(input);
  });
}

/** One request to the gateway's console API: status and JSON body. */
function api(w: World, method: string, p: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: Record<string, unknown>; setCookie: string }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: w.consolePort, path: p, method, headers: { ...headers, ...(text === undefined ? {} : { 'content-type': 'application/json' }) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8') || '{}'), setCookie: String(res.headers['set-cookie']?.[0] ?? '') }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

function steps(out: string): string[] {
  return out.split('\n').filter((l) => /^\d\/7 /.test(l));
}

/** Why the setup failed (each test then fails with it: uvu would not show an error from a hook). */
let setupError: unknown = null;

/** The world to test in; null when sshd is not installed (skipped); throws what broke the setup. */
function need(): World | null {
  if (setupError !== null) throw setupError;
  return world;
}

test.before(async () => {
  const c = new Cleanup();
  try {
    if (!sshdAvailable('flash scenarios')) return;
    await within(15_000, 'starting sshd and the gateway', async () => {
      const dir = tmpDir(c, 'holdfast-flash-');
      const board = await startSshd(c, dir);
      const sink = await hashServer(c);
      const gwHttp = await freePort();
      const gwTcp = await freePort();
      const consolePort = await freePort();
      const data = path.join(dir, 'data');
      assert.is(await runCli(['operator', 'add', 'olga', '--role', 'operator', '--data', data], 'olga password 1\n'), 0, 'operator add');
      const gw = holdfast(
        [
          'gateway',
          '--http',
          `127.0.0.1:${gwHttp}`,
          '--tcp',
          `127.0.0.1:${gwTcp}`,
          '--devices',
          devicesFile(dir, { [ID]: KEY }),
          '--allow',
          `127.0.0.1:${sink.port}`,
          '--data',
          data,
          '--console',
          `127.0.0.1:${consolePort}`,
        ],
        c,
      );
      c.add(() => gw.kill('SIGTERM'));
      await gw.waitFor(/gateway: ready/, 10_000, 0);
      const keyFile = path.join(dir, 'flash.key');
      fs.writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
      const w: World = { c, dir, board, gw, gwHttp, gwTcp, sink, keyFile, prefix: path.join(dir, 'board', 'holdfast'), forwardPort: await freePort(), consolePort };
      c.add(() => stopDevice(w));
      world = w;
    });
  } catch (e) {
    setupError = e;
    await c.run();
  }
});

test.after(async () => {
  await world?.c.run();
  world = null;
});

test('1. flash: every step ok, files and modes, no key on a command line, session open, 1 MiB forwarded intact', async () => {
  const w = need();
  if (w === null) return;
  await within(90_000, 'first flash', async () => {
    const watch = watchCommandLines(KEY, () => []);
    const r = await flash(w, []);
    const seen = watch.stop();
    assert.is(r.code, 0, `flash exit status\n${r.out}`);
    const lines = steps(r.out);
    assert.is(lines.length, 7, `seven steps:\n${r.out}`);
    for (const [i, l] of lines.entries()) assert.match(l, new RegExp(`^${i + 1}/7 .* \\.\\.\\. ok`), `step ${i + 1} ok: ${l}`);
    assert.match(lines[0], /holdfast-device\.js .*holdfast-launcher\.js/, 'both bundles');
    assert.match(lines[1], /no systemd/, 'this sandbox has no systemd');
    assert.match(lines[2], /holdfast-device\.js .*holdfast-launcher\.js .*sha256 checked/);
    assert.match(lines[4], /started by hand, launcher pid \d+/);
    assert.match(lines[5], /under the launcher/);
    assert.not.match(r.out, new RegExp(KEY), 'the key is not printed');

    // the key on no command line, here or on the "board" (the same machine): checked while it ran
    assert.ok(seen.samples > 20 && seen.sshSeen > 0, `the watch saw ssh children (${seen.sshSeen} in ${seen.samples} samples)`);
    assert.equal(seen.hits, [], 'no process had the key in its command line');

    // files and modes
    const p = w.prefix;
    assert.is(fs.readFileSync(path.join(p, 'device.key'), 'utf8'), `${KEY}\n`);
    assert.is(mode(path.join(p, 'device.key')), 0o600, 'device.key 0600');
    assert.is(mode(path.join(p, 'device.json')) & 0o077, 0, 'device.json not readable by others');
    assert.is(mode(path.join(p, 'state')), 0o700, 'state 0700');
    assert.is(mode(path.join(p, 'holdfast-device.js')) & 0o111, 0o111, 'the bundle is executable');
    assert.is(mode(path.join(p, 'holdfast-launcher.js')) & 0o111, 0o111, 'the launcher is executable');
    assert.is(shaOf(path.join(p, 'holdfast-launcher.js')), shaOf(path.join(ROOT, 'dist', 'holdfast-launcher.js')), 'the launcher copied whole');
    const ls = launcherState(w);
    const flashed = shaOf(path.join(p, 'holdfast-device.js'));
    assert.equal([ls.phase, ls.current, ls.previous, ls.installed], ['stable', flashed, null, flashed], "the flashed bundle is the launcher's current one");
    const configText = fs.readFileSync(path.join(p, 'device.json'), 'utf8');
    assert.not.ok(configText.includes(KEY), 'no key in device.json');
    const config = JSON.parse(configText) as Record<string, unknown>;
    assert.equal(config, {
      gateway: `http://127.0.0.1:${w.gwHttp}`,
      tcp: `127.0.0.1:${w.gwTcp}`,
      id: ID,
      forward: [`${w.forwardPort}:127.0.0.1:${w.sink.port}`],
      state: path.join(p, 'state'),
      status: path.join(p, 'status.json'),
      keyFile: path.join(p, 'device.key'),
    });
    assert.equal(
      fs.readdirSync(p).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary files left',
    );

    // the launcher started by hand, from its pidfile; the device its child; no key on either command line
    const { device } = checkLauncherAndChild(w);

    // status open, and the gateway saw that session
    const status = statusOf(w);
    assert.is(status.pid, device);
    assert.is(status.state, 'open');
    assert.match(status.session, /^[0-9a-f]{16,}$/);
    assert.match(lines[5], new RegExp(`session ${status.session}, transport (tcp|http)`));
    await w.gw.waitFor(new RegExp(`session opened  device=${ID} session=${status.session.slice(0, 8)}`), 5000, 0);

    // a stream through the flashed device's --forward port
    const data = randomData(1 << 20);
    assert.is((await pushThrough(w.forwardPort, data)).toString(), sha256(data), 'sha256 through the flashed device');
    assert.equal(w.sink.bytes, [data.length]);
  });
});

test('2. flash a new build again (an update): bundles replaced, the new one current, old launcher and device stopped, session open again', async () => {
  const w = need();
  if (w === null) return;
  await within(90_000, 'second flash', async () => {
    const bundle = path.join(w.prefix, 'holdfast-device.js');
    const inodeBefore = fs.statSync(bundle).ino;
    const launcherInodeBefore = fs.statSync(path.join(w.prefix, 'holdfast-launcher.js')).ino;
    const before = checkLauncherAndChild(w);
    const shaBefore = shaOf(bundle);
    const sessionBefore = statusOf(w).session;
    // A new build: dist's device bundle with a comment more (newer than the sources: not rebuilt).
    const dist = path.join(ROOT, 'dist', 'holdfast-device.js');
    const original = fs.readFileSync(dist);
    w.c.add(() => fs.writeFileSync(dist, original));
    fs.writeFileSync(dist, Buffer.concat([original, Buffer.from('\n// a new build, flashed by the test\n')]));
    const shaNew = shaOf(dist);
    // --key this time: it is on flash's own command line (which is why --key-file exists), and on no other
    let flashPid = -1;
    const watch = watchCommandLines(KEY, () => [flashPid]);
    const proc = startFlash(w, [], { key: 'flag' });
    flashPid = proc.child.pid ?? -1;
    const r = { code: await proc.exited, out: proc.log };
    const seen = watch.stop();
    fs.writeFileSync(dist, original);
    assert.is(r.code, 0, `flash exit status\n${r.out}`);
    assert.ok(flashPid > 0, 'found the flash process');
    assert.equal(seen.hits, [], 'no process but flash itself had the key in its command line');
    assert.is(steps(r.out).filter((l) => / \.\.\. ok/.test(l)).length, 7, r.out);
    assert.match(r.out, new RegExp(`after stopping pid ${before.launcher}`));
    assert.is.not(fs.statSync(bundle).ino, inodeBefore, 'a new bundle file was renamed into place');
    assert.is.not(fs.statSync(path.join(w.prefix, 'holdfast-launcher.js')).ino, launcherInodeBefore, 'a new launcher file was renamed into place');
    assert.is(shaOf(bundle), shaNew);
    for (const old of [before.launcher, before.device]) assert.not.ok(alive(old) && (cmdline(old) ?? '').includes(w.prefix), `the old process ${old} stopped`);
    const after = checkLauncherAndChild(w);
    assert.ok(after.launcher !== before.launcher && after.device !== before.device, 'a new launcher and a new device');
    const ls = launcherState(w);
    assert.equal([ls.phase, ls.current, ls.previous, ls.installed], ['stable', shaNew, shaBefore, shaNew], 'the new build is current, the one before previous');
    // No process of the prefix but the new launcher and its device (ssh's shells are gone by now).
    const ours = fs
      .readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n) && (cmdline(Number(n)) ?? '').includes(`${w.prefix}/`) && !/^(\S*\/)?(ba|da)?sh /.test(cmdline(Number(n)) ?? ''))
      .map(Number)
      .sort((x, y) => x - y);
    assert.equal(
      ours,
      [after.launcher, after.device].sort((x, y) => x - y),
      'nothing of the old flash survives',
    );
    const status = statusOf(w);
    assert.is(status.state, 'open');
    assert.match(status.session, /^[0-9a-f]{16,}$/);
    console.log(`  update: ${status.session === sessionBefore ? 'the same session, resumed from the journal' : 'a new session'} (${status.session.slice(0, 8)})`);
  });
});

test('3. failing steps name themselves: wrong ssh key at step 2, an uncreatable prefix at step 3, a bad flag before anything', async () => {
  const w = need();
  if (w === null) return;
  await within(20_000, 'failing flashes', async () => {
    const pid = readPid(w);
    const wrong = await flash(w, [], { identity: w.board.wrongIdentity });
    assert.is(wrong.code, 1, wrong.out);
    assert.match(wrong.out, /^2\/7 checking the board \.\.\. FAILED$/m);
    assert.match(wrong.out, /HF_ERR_CONNECT: step 2\/7 \(checking the board\) failed: .*Permission denied \(publickey\).*Nothing on the board was changed\./);
    assert.not.match(wrong.out, /^3\/7/m, 'stopped at step 2');

    const file = path.join(w.dir, 'a-file');
    fs.writeFileSync(file, 'not a folder\n');
    const prefix = path.join(file, 'holdfast');
    const bad = await flash(w, [], { prefix });
    assert.is(bad.code, 1, bad.out);
    assert.match(bad.out, /^2\/7 checking the board \.\.\. ok/m);
    assert.match(bad.out, /^3\/7 copying the bundles \.\.\. FAILED$/m);
    assert.match(bad.out, /HF_ERR_STORAGE: step 3\/7 \(copying the bundles\) failed: cannot create .*Not a directory/);
    assert.not.match(bad.out, /^4\/7/m, 'stopped at step 3');

    const opt = await flash(w, ['--forward', '99999:127.0.0.1:1']);
    assert.is(opt.code, 2, opt.out);
    assert.match(opt.out, /HF_ERR_OPTION: --forward must be LOCALPORT:HOST:PORT, got "99999:127\.0\.0\.1:1"/);
    assert.not.match(opt.out, /^1\/7/m, 'nothing ran');

    assert.is(readPid(w), pid, 'the running device was left alone');
    assert.ok(alive(pid));
  });
});

// A restarted device resumes its session with a new mux: its START makes the gateway's mux start its
// streams over (docs/MUX.md 2a), so forwarding works again on the resumed session.
test('4. after the update, a stream through the --forward port arrives intact', async () => {
  const w = need();
  if (w === null) return;
  await within(10_000, 'forward after the update', async () => {
    const data = randomData(256 << 10);
    const got = await Promise.race([pushThrough(w.forwardPort, data), new Promise<Buffer>((r) => setTimeout(() => r(Buffer.from('timeout')), 8000))]);
    if (got.toString() === 'timeout') {
      const fs = await import('node:fs');
      // What the two ends said, for whoever reads the failure.
      console.log('device log:\n' + fs.readFileSync(w.prefix + '/device.log', 'utf8').slice(-3000));
      console.log('gateway log:\n' + w.gw.log.slice(-3000));
    }
    assert.is(got.toString(), sha256(data), 'sha256 through the updated device');
  });
});

test('5. the flashed board answers a management update: its launcher tries the new bundle and keeps it', async () => {
  const w = need();
  if (w === null) return;
  await within(60_000, 'update through the console API', async () => {
    const before = checkLauncherAndChild(w);
    const running = launcherState(w).current;
    const login = await api(w, 'POST', '/api/login', {}, { name: 'olga', password: 'olga password 1' });
    assert.is(login.status, 200, JSON.stringify(login.body));
    const auth = { cookie: login.setCookie.split(';')[0], 'x-csrf-token': String(login.body.csrf) };
    const bundle = Buffer.concat([fs.readFileSync(path.join(w.prefix, 'holdfast-device.js')), Buffer.from('\n// a build sent by update\n')]);
    const sha = createHash('sha256').update(bundle).digest('hex');
    const made = await api(w, 'POST', '/api/jobs', auth, { op: 'update', args: { bundle: bundle.toString('base64'), sha256: sha }, selector: `id=${ID}`, timeoutMs: 50_000 });
    assert.is(made.status, 201, JSON.stringify(made.body));
    const job = (made.body.job as { id: string }).id;
    let t: { state: string; errorCode: string | null; result: Record<string, unknown> | null } = { state: 'queued', errorCode: null, result: null };
    for (let i = 0; i < 1000 && !['succeeded', 'failed', 'timed-out', 'cancelled'].includes(t.state); i++) {
      await sleep(200);
      const r = await api(w, 'GET', `/api/jobs/${job}`, auth);
      t = (r.body.targets as (typeof t & { deviceId: string })[]).find((x) => x.deviceId === ID) ?? t;
    }
    if (t.state !== 'succeeded') console.log(`device log:\n${readOr(path.join(w.prefix, 'device.log')).slice(-3000)}`);
    assert.is(t.state, 'succeeded', JSON.stringify(t));
    assert.equal(t.result, { sha256: sha, previous: running });
    const ls = launcherState(w);
    assert.equal([ls.phase, ls.current, ls.previous, ls.last?.result], ['stable', sha, running, 'confirmed'], 'kept by the launcher');
    assert.is(readPid(w), before.launcher, 'the launcher itself was not restarted');
    const device = statusOf(w).pid;
    assert.ok(device !== before.device && parentOf(device) === before.launcher, "a new device, the same launcher's child");
    assert.ok((cmdline(device) ?? '').includes(path.join(w.prefix, 'launcher', 'bundles', `${sha}.js`)), 'it runs the bundle update sent');
    assert.is(statusOf(w).state, 'open');
  });
});

test.run();
