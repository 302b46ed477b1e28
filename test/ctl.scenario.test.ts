/**
 * `holdfast ctl` against the real CLI (bin/holdfast, spawned without blocking: the management API it
 * talks to runs in this process) and a gateway's management started in-process on 127.0.0.1, with
 * three devices online on loopback links (each served by the device's own management server) and one
 * that never connects. API tokens made through the store, written to mode 0600 files.
 *
 * devices with a selector (a table, or JSON lines); run info --wait: the job id, then a line per
 * device, exit 0; an exec not on the allow-list: a line with its code and exit 1 naming it; an unknown
 * operation, a viewer's token, a bad token: one line with the API's code, exit 1, no job made; jobs,
 * job, cancel; audit and audit --verify; a token file others may read refused (exit 2); no console
 * there: HF_ERR_CONNECT. Every flag shows in --help. Through a proxy counting requests: run --wait
 * follows the job on the event stream (one GET of the job, to confirm, however long it runs), and
 * polls when the stream is cut.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Management, startManagement } from '../targets/host/gateway/manage/start';
import { silentLog } from '../targets/node/log';
import { CLI, ROOT } from './support/host';
import { connectBoard, type TestBoard, testBoard } from './support/manage-device';

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

let m: Management;
let base: string;
let dir: string;
const boards = new Map<string, TestBoard>();
const closers: (() => void)[] = [];
let operatorToken: string;
let viewerToken: string;

/** Runs bin/holdfast with `args` (and `env` added to a clean environment) and waits for it to exit. */
function cli(args: string[], env: Record<string, string> = {}, input?: string): Promise<Ran> {
  const clean = { ...process.env };
  delete clean.HOLDFAST_TOKEN;
  delete clean.HOLDFAST_CONSOLE;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) p.stdin?.end(input);
    let stdout = '';
    let stderr = '';
    p.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    p.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function secret(name: string, text: string, mode = 0o600): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode);
  return f;
}

/** `holdfast ctl SUB ARGS` against the in-process console with the operator's token file. */
const ctl = (sub: string, ...args: string[]): Promise<Ran> => cli(['ctl', sub, '--console', base, '--token-file', path.join(dir, 'olga.token'), ...args]);

const jobCount = (): number => m.store.jobs.jobs({ limit: 1000 }).length;

/** Asserts one line on stderr, `holdfast ctl: CODE: ...` matching `rest`, exit `status` and nothing on stdout. */
function refused(r: Ran, status: number, code: string, rest: RegExp = /.+/): void {
  assert.is(r.status, status, `${r.stderr}${r.stdout}`);
  assert.is(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
  const prefix = `holdfast ctl: ${code}: `;
  assert.ok(r.stderr.startsWith(prefix), r.stderr);
  assert.match(r.stderr.slice(prefix.length).trimEnd(), rest);
  assert.is(r.stdout, '');
}

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hf-ctl-'));
  m = await startManagement({
    dataDir: path.join(dir, 'data'),
    listen: '127.0.0.1:0',
    log: silentLog,
    deviceIds: ['pi-1', 'pi-2', 'x-1', 'off-1'],
    labels: { 'pi-1': { class: 'pi4', site: 'berlin' }, 'pi-2': { class: 'pi4', site: 'lyon' }, 'x-1': { class: 'x86', site: 'berlin' }, 'off-1': { class: 'pi4', site: 'gone' } },
    service: { infoMaxAgeMs: 0, sweepMs: 20 },
    console: { files: null },
  });
  base = m.url as string;
  await m.store.operators.add('olga', 'operator', 'olga password 1');
  await m.store.operators.add('vic', 'viewer', 'vic password 1');
  operatorToken = m.store.tokens.create('olga', 'ctl').token;
  viewerToken = m.store.tokens.create('vic', 'ctl').token;
  secret('olga.token', `${operatorToken}\n`);
  secret('vic.token', `${viewerToken}\n`);
  for (const id of ['pi-1', 'pi-2', 'x-1']) {
    const board = testBoard();
    boards.set(id, board);
    const b = await connectBoard(m, id, board);
    closers.push(() => b.close());
  }
});

test.after(async () => {
  for (const c of closers) c();
  await m.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('devices with a selector: a table of those it matches; --json: one object a line', async () => {
  const r = await ctl('devices', 'class=pi4,online');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  const rows = r.stdout.trimEnd().split('\n');
  assert.match(rows[0], /^ID\s+ONLINE\s+TRANSPORT\s+LAST SEEN\s+LABELS\s+TEMP$/);
  assert.equal(
    rows.slice(1).map((l) => l.split(/\s{2,}/)),
    [
      ['pi-1', 'yes', 'tcp', rows[1].split(/\s{2,}/)[3], 'class=pi4,site=berlin', '-'],
      ['pi-2', 'yes', 'tcp', rows[2].split(/\s{2,}/)[3], 'class=pi4,site=lyon', '-'],
    ],
  );
  assert.match(rows[1], / \d+ s ago /);
  const j = await ctl('devices', '--json');
  assert.is(j.status, 0, j.stderr);
  const all = j.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(
    all.map((d) => [d.id, d.online, d.transport]),
    [
      ['off-1', false, null],
      ['pi-1', true, 'tcp'],
      ['pi-2', true, 'tcp'],
      ['x-1', true, 'tcp'],
    ],
  );
  const none = await ctl('devices', 'site=paris');
  assert.is(none.stdout, 'no device matches site=paris\n');
});

let infoJob = '';

test('run info --on class=pi4,online --wait: the job id, a line per device as it lands, exit 0; the others got nothing', async () => {
  const r = await ctl('run', 'info', '--on', 'class=pi4,online', '--wait');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^j-[0-9a-z]+-[0-9a-f]+$/);
  infoJob = lines[0];
  assert.is(lines.length, 3, r.stdout);
  assert.equal(
    lines
      .slice(1)
      .map((l) => l.split(/\s+/).slice(0, 2))
      .sort(),
    [
      ['pi-1', 'succeeded'],
      ['pi-2', 'succeeded'],
    ],
  );
  for (const l of lines.slice(1)) assert.match(l, /succeeded {2}.*°C/, 'the result in a few words');
  assert.equal(boards.get('pi-1')?.started, [infoJob]);
  assert.equal(boards.get('pi-2')?.started, [infoJob]);
  assert.equal(boards.get('x-1')?.started, []);
  // what they reported shows in the device list
  const d = await ctl('devices', 'id=pi-1');
  assert.match(d.stdout.split('\n')[1], /\d+\.\d °C$/);
});

test('run --json --wait with arguments from @file: the finished job and its targets as one JSON object', async () => {
  const args = path.join(dir, 'args.json');
  fs.writeFileSync(args, JSON.stringify({ argv: ['/bin/count'] }));
  const r = await ctl('run', 'exec', `@${args}`, '--on', 'id=x-1', '--wait', '--json', '--timeout-ms', '5000');
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.is(out.job.op, 'exec');
  assert.is(out.job.timeoutMs, 5000);
  assert.equal(
    out.targets.map((t: { deviceId: string; state: string }) => [t.deviceId, t.state]),
    [['x-1', 'succeeded']],
  );
  assert.is(Buffer.from(out.targets[0].result.stdout, 'base64').toString(), 'counted\n');
});

test('run --wait where a device fails: its line with the code, then one line naming it, exit 1', async () => {
  const r = await ctl('run', 'exec', '{"argv": ["/bin/rm", "-rf", "/"]}', '--on', 'site=berlin,online', '--wait');
  assert.is(r.status, 1, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.is(lines.length, 3);
  for (const id of ['pi-1', 'x-1'])
    assert.ok(
      lines.some((l) => new RegExp(`^${id}\\s+failed\\s+HF_ERR_NOT_ALLOWED `).test(l)),
      r.stdout,
    );
  assert.match(
    r.stderr,
    new RegExp(`^holdfast ctl: HF_ERR_NOT_ALLOWED: job ${lines[0]}: 2 of 2 devices did not succeed: (pi-1|x-1) failed HF_ERR_NOT_ALLOWED, (pi-1|x-1) failed HF_ERR_NOT_ALLOWED\\n$`),
  );
});

test('an unknown operation: HF_ERR_UNKNOWN_OP, exit 1, no job made', async () => {
  const before = jobCount();
  const r = await ctl('run', 'reboot-now', '--on', 'class=pi4');
  refused(r, 1, 'HF_ERR_UNKNOWN_OP', /^unknown operation "reboot-now" \(operations: info, /);
  assert.is(jobCount(), before);
});

test("a viewer's token running a job: HF_ERR_ROLE, exit 1, no job made; it may still look", async () => {
  const before = jobCount();
  const vic = ['--console', base, '--token-file', path.join(dir, 'vic.token')];
  const r = await cli(['ctl', 'run', 'info', '--on', '*', ...vic]);
  refused(r, 1, 'HF_ERR_ROLE');
  assert.is(jobCount(), before);
  const look = await cli(['ctl', 'devices', ...vic]);
  assert.is(look.status, 0, look.stderr);
});

test('a bad token: HF_ERR_LOGIN, exit 1; the token from HOLDFAST_TOKEN and the console from HOLDFAST_CONSOLE', async () => {
  const bad = await cli(['ctl', 'jobs'], { HOLDFAST_CONSOLE: base, HOLDFAST_TOKEN: `hft_${'A'.repeat(43)}` });
  refused(bad, 1, 'HF_ERR_LOGIN');
  const ok = await cli(['ctl', 'devices', 'id=x-1'], { HOLDFAST_CONSOLE: base, HOLDFAST_TOKEN: operatorToken });
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout.split('\n')[1], /^x-1\s+yes\s+tcp/);
});

test('jobs: a table, newest first; --json one object a line; job ID: a line per device', async () => {
  const r = await ctl('jobs', '--limit', '10');
  assert.is(r.status, 0, r.stderr);
  const rows = r.stdout.trimEnd().split('\n');
  assert.match(rows[0], /^ID\s+OP\s+SELECTOR\s+BY\s+MADE\s+STATES$/);
  assert.is(rows.length, 4, r.stdout);
  assert.match(rows[3], new RegExp(`^${infoJob}\\s+info\\s+class=pi4,online\\s+olga\\s+\\S+Z\\s+succeeded 2$`));
  assert.match(rows[1], /^j-\S+\s+exec\s+site=berlin,online\s+olga\s+\S+\s+failed 2$/);
  const j = await ctl('jobs', '--json', '--limit', '1');
  assert.is(j.stdout.trim().split('\n').length, 1);
  assert.is(JSON.parse(j.stdout).op, 'exec');
  const one = await ctl('job', infoJob);
  assert.is(one.status, 0, one.stderr);
  const lines = one.stdout.trimEnd().split('\n');
  assert.match(lines[0], new RegExp(`^job ${infoJob}: info on class=pi4,online by olga at \\S+; succeeded 2$`));
  assert.equal(
    lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2)),
    [
      ['pi-1', 'succeeded'],
      ['pi-2', 'succeeded'],
    ],
  );
  refused(await ctl('job', 'j-none'), 1, 'HF_ERR_NOT_FOUND', /^no job "j-none"$/);
});

test('run for a device that is offline: the id at once, the target queued; cancel ID cancels it', async () => {
  const r = await ctl('run', 'info', '--on', 'id=off-1');
  assert.is(r.status, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^j-/);
  assert.equal(
    m.store.jobs.targets(id).map((t) => t.state),
    ['queued'],
  );
  const c = await ctl('cancel', id);
  assert.is(c.status, 0, c.stderr);
  assert.is(c.stdout, `job ${id} cancelled; cancelled 1\n`);
  const waited = await ctl('run', 'info', '--on', 'id=off-1', '--wait', '--wait-ms', '300');
  assert.is(waited.status, 1);
  assert.match(waited.stderr, /^holdfast ctl: HF_ERR_TIMEOUT: job j-\S+: still waiting for 1 of 1 devices after --wait-ms 300 \(off-1 queued\); the job goes on: holdfast ctl job j-\S+\n$/);
});

test('audit: the latest entries oldest first; --verify: the chain intact and its head', async () => {
  const r = await ctl('audit', '--limit', '5');
  assert.is(r.status, 0, r.stderr);
  const rows = r.stdout.trimEnd().split('\n');
  assert.match(rows[0], /^SEQ\s+AT\s+ACTOR\s+ACTION\s+TARGET\s+DETAIL$/);
  assert.is(rows.length, 6);
  const seqs = rows.slice(1).map((l) => Number(l.split(/\s+/)[0]));
  assert.equal(
    seqs,
    [...seqs].sort((a, b) => a - b),
  );
  const all = m.store.audit.latest(1000);
  assert.ok(
    all.some((e) => e.action === 'request.refused' && e.actor === 'vic' && (e.detail as { code?: string }).code === 'HF_ERR_ROLE'),
    "the viewer's attempt is audited",
  );
  const v = await ctl('audit', '--verify');
  assert.is(v.status, 0, v.stderr);
  const head = m.store.audit.head();
  assert.is(v.stdout, `the audit log of ${base}: ${head.seq} entries, chain intact\nhead: seq ${head.seq} sha256 ${head.hash}\n`);
  const j = await ctl('audit', '--verify', '--json');
  assert.equal([JSON.parse(j.stdout).ok, JSON.parse(j.stdout).count], [true, head.seq]);
});

test('a token file others may read: refused, exit 2, nothing asked of the console; --insecure-key-file takes it with a warning', async () => {
  const loose = secret('loose.token', `${operatorToken}\n`, 0o644);
  const r = await cli(['ctl', 'devices', '--console', base, '--token-file', loose]);
  refused(r, 2, 'HF_ERR_OPTION', new RegExp(`^--token-file ${loose}: mode 0644, group or others may read it \\(bits 0044\\); fix: chmod 600 ${loose} \\(or give --insecure-key-file\\)$`));
  const ok = await cli(['ctl', 'devices', '--console', base, '--token-file', loose, '--insecure-key-file']);
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /^holdfast ctl: warning: --token-file \S+ mode 0644/);
});

test('no console there: HF_ERR_CONNECT naming it, exit 1', async () => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  const r = await cli(['ctl', 'devices', '--console', `127.0.0.1:${port}`, '--token-file', path.join(dir, 'olga.token')]);
  refused(r, 1, 'HF_ERR_CONNECT', new RegExp(`^cannot reach the console at http://127\\.0\\.0\\.1:${port}/: ECONNREFUSED `));
});

test('token: log in with the password on stdin, a token written to a new 0600 file, used at once; the session ended', async () => {
  const out = path.join(dir, 'laptop.token');
  const r = await cli(['ctl', 'token', 'laptop', '--operator', 'olga', '--role', 'viewer', '--out', out, '--console', base], {}, 'olga password 1\n');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `token laptop (viewer, for olga) written to ${out}, mode 600: holdfast ctl devices --token-file ${out}\n`);
  assert.is(fs.statSync(out).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(out, 'utf8'), /^hft_\S+\n$/);
  const look = await cli(['ctl', 'devices', '--console', base, '--token-file', out]);
  assert.is(look.status, 0, look.stderr);
  refused(await cli(['ctl', 'run', 'info', '--on', '*', '--console', base, '--token-file', out]), 1, 'HF_ERR_ROLE');
  assert.ok(m.store.audit.latest(50).some((e) => e.action === 'token.create' && e.actor === 'olga' && (e.detail as { name?: string }).name === 'laptop'));
  assert.ok(
    m.store.audit.latest(50).some((e) => e.action === 'login' && e.target === 'olga'),
    'the login is audited',
  );
  // printed when there is no --out
  const p = await cli(['ctl', 'token', 'script', '--operator', 'olga', '--console', base], {}, 'olga password 1\n');
  assert.is(p.status, 0, p.stderr);
  assert.match(p.stdout, /^hft_\S+\n$/);
  // a wrong password, a role above the operator's, a file that exists
  refused(await cli(['ctl', 'token', 'x', '--operator', 'olga', '--console', base], {}, 'wrong password\n'), 1, 'HF_ERR_LOGIN');
  refused(await cli(['ctl', 'token', 'x', '--operator', 'olga', '--role', 'admin', '--console', base], {}, 'olga password 1\n'), 1, 'HF_ERR_ROLE');
  refused(await cli(['ctl', 'token', 'x', '--operator', 'olga', '--out', out, '--console', base], {}, 'olga password 1\n'), 2, 'HF_ERR_OPTION', /exists already/);
});

const BAD: [string, string[], RegExp][] = [
  ['no subcommand', ['ctl'], /^ctl needs a subcommand: devices, run, jobs, job, cancel, audit, token or drain/],
  ['an unknown subcommand', ['ctl', 'reboot'], /^unknown ctl subcommand "reboot"/],
  ['no token', ['ctl', 'devices', '--console', 'http://127.0.0.1:9'], /^--token-file FILE or HOLDFAST_TOKEN is required/],
  ['run without --on', ['ctl', 'run', 'info'], /^ctl run needs --on SELECTOR/],
  ['run without OP', ['ctl', 'run', '--on', '*'], /^ctl run needs OP/],
  ['arguments not JSON', ['ctl', 'run', 'exec', '{argv:', '--on', '*'], /^ARGS-JSON: not JSON \(/],
  ['arguments not an object', ['ctl', 'run', 'exec', '[1]', '--on', '*'], /^ARGS-JSON: must be a JSON object/],
  ['a missing @file', ['ctl', 'run', 'exec', '@/nonexistent/args.json', '--on', '*'], /^ARGS-JSON @\/nonexistent\/args\.json: ENOENT$/],
  ['--wait-ms without --wait', ['ctl', 'run', 'info', '--on', '*', '--wait-ms', '5'], /^--wait-ms goes with --wait$/],
  ['a bad --limit', ['ctl', 'jobs', '--limit', '0'], /^--limit must be a whole number in 1\.\.1000, got 0$/],
  ['a bad --timeout-ms', ['ctl', 'run', 'info', '--on', '*', '--timeout-ms', '1.5'], /^--timeout-ms must be a whole number in 1\.\.4294967295, got 1\.5$/],
  ['job without ID', ['ctl', 'job'], /^ctl job needs one job ID$/],
  ['a bad --console', ['ctl', 'jobs', '--console', 'ftp://x', '--token-file', 'x'], /^--console "ftp:\/\/x": http:\/\/ or https:\/\/, not ftp:$/],
  ['an unknown flag', ['ctl', 'devices', '--token', 'hft_x'], /^unknown flag --token$/],
];

for (const [name, args, line] of BAD) {
  test(`bad input, one line and exit 2: ${name}`, async () => {
    refused(await cli(args), 2, 'HF_ERR_OPTION', line);
  });
}

test('--help: every flag of every subcommand; the command list names ctl', async () => {
  const common = ['--console', '--token-file', '--insecure-key-file', '--json', '--help'];
  const flags: Record<string, string[]> = {
    devices: common,
    run: ['--on', '--wait', '--wait-ms', '--timeout-ms', '--expires-in-ms', ...common],
    jobs: ['--limit', ...common],
    job: common,
    cancel: common,
    audit: ['--limit', '--verify', ...common],
    token: ['--operator', '--role', '--password-file', '--out', '--console', '--insecure-key-file', '--json', '--help'],
  };
  for (const [sub, names] of Object.entries(flags)) {
    const r = await cli(['ctl', sub, '--help']);
    assert.is(r.status, 0, sub);
    assert.match(r.stdout, new RegExp(`^usage: holdfast ctl ${sub} `));
    for (const f of names) assert.match(r.stdout, new RegExp(`^  ${f}\\b`, 'm'), `ctl ${sub} --help shows ${f}`);
  }
  const list = await cli(['ctl', '--help']);
  for (const sub of Object.keys(flags)) assert.match(list.stdout, new RegExp(`^  ${sub}\\b`, 'm'));
  const top = await cli(['--help']);
  assert.match(top.stdout, /^ {2}ctl +list devices, run jobs/m);
});

/**
 * A proxy on 127.0.0.1 in front of the console counting each request by method and path;
 * `cutEventsMs` ends every event stream that long after it opened (the stream breaking).
 */
async function countingProxy(cutEventsMs: number | null = null): Promise<{ url: string; counts: Map<string, number>; close: () => Promise<void> }> {
  const counts = new Map<string, number>();
  const target = new URL(base);
  const s = http.createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
      if (cutEventsMs !== null && req.url === '/api/events') setTimeout(() => res.destroy(), cutEventsMs);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    counts,
    close: () =>
      new Promise((r) => {
        s.closeAllConnections();
        s.close(() => r());
      }),
  };
}

const jobReads = (counts: Map<string, number>, id: string): number => counts.get(`GET /api/jobs/${id}`) ?? 0;

test('run --wait follows the job on the event stream: one GET of the job at the end to confirm, not a poll', async () => {
  const p = await countingProxy();
  try {
    const t0 = Date.now();
    const r = await cli(['ctl', 'run', 'exec', '{"argv": ["/bin/sleep", "700"]}', '--on', 'id=pi-2', '--wait', '--console', p.url, '--token-file', path.join(dir, 'olga.token')]);
    assert.is(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.is(lines.length, 2, r.stdout);
    assert.match(lines[1], /^pi-2\s+succeeded\s+exit 0/);
    assert.ok(Date.now() - t0 >= 700, 'it waited for the command');
    assert.is(p.counts.get('GET /api/events'), 1, [...p.counts].join(' '));
    // Polling would have read the job at 0, 100, 300 and 700 ms.
    assert.is(jobReads(p.counts, lines[0]), 1, [...p.counts].join(' '));
  } finally {
    await p.close();
  }
});

test('run --wait when the event stream breaks: the job is polled instead, every line still printed once', async () => {
  const p = await countingProxy(150);
  try {
    const r = await cli(['ctl', 'run', 'exec', '{"argv": ["/bin/sleep", "600"]}', '--on', 'class=pi4,online', '--wait', '--console', p.url, '--token-file', path.join(dir, 'olga.token')]);
    assert.is(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(
      lines
        .slice(1)
        .map((l) => l.split(/\s+/).slice(0, 2).join(' '))
        .sort(),
      ['pi-1 succeeded', 'pi-2 succeeded'],
      r.stdout,
    );
    assert.ok(jobReads(p.counts, lines[0]) >= 2, `polled: ${[...p.counts].join(' ')}`);
  } finally {
    await p.close();
  }
});

test.run();
