/**
 * `holdfast ctl`: the gateway's management API (the one the web console uses) from a shell, with an
 * API token. Subcommands:
 *
 *   devices [SELECTOR]                   the devices (a selector such as `class=pi4,online` narrows them)
 *   run OP [ARGS-JSON|@FILE] --on SEL    make a job; prints its id; --wait follows it to the end
 *   jobs [--limit N]                     the latest jobs
 *   job ID                               one job, a line per device
 *   cancel ID                            cancel what is still pending of a job
 *   audit [--limit N] [--verify]         the latest audit entries, or the verdict on the hash chain
 *   token NAME --operator OP             log in (the password as `holdfast operator add` takes it) and
 *                                        make an API token for the others (--out FILE: mode 600)
 *
 * The console: --console URL, else HOLDFAST_CONSOLE, else http://127.0.0.1:8090. The token: the first
 * line of --token-file (refused, like key files, when group or others may read it), else
 * HOLDFAST_TOKEN. It is never taken on the command line, where `ps` shows it to every user.
 *
 * A refusal of the API is one line `holdfast ctl: HF_ERR_...: message` and exit 1 (the API's code, e.g.
 * HF_ERR_ROLE, HF_ERR_UNKNOWN_OP); a bad flag exit 2; no console there HF_ERR_CONNECT, exit 1.
 * `run --wait` exits 0 when every device succeeded, else 1 with a line naming the devices and codes.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import type { AuditEntry, AuditVerdict } from '../../targets/host/gateway/manage/audit';
import type { Job, Target } from '../../targets/host/gateway/manage/jobs-store';
import { isRole, ROLES } from '../../targets/host/gateway/manage/operators';
import type { DeviceView } from '../../targets/host/gateway/manage/service';
import { type Flag, parseArgs, usage, type Values } from './args';
import { auditTable, devicesTable, jobsTable, stateCounts, targetLine } from './ctl-format';
import { JobFollower } from './ctl-follow';
import { ApiRefusal, ConsoleClient, consoleUrl, sessionHeaders } from './ctl-http';
import { checkSecretFile, INSECURE_KEY_FILE_FLAG } from './key';
import { passwordFromFile, passwordFromPipe, readHidden } from './operator-cmd';
import { ctlDrain } from './ctl-drain';
import { EXIT } from './run';

export const DEFAULT_CONSOLE = 'http://127.0.0.1:8090';

/** Longest token file read, bytes. */
const MAX_TOKEN_FILE = 64 * 1024;

const COMMON_FLAGS: Flag[] = [
  { name: 'console', meta: 'URL', help: `the management API, as the gateway's --console serves it (default: HOLDFAST_CONSOLE, else ${DEFAULT_CONSOLE})` },
  { name: 'token-file', meta: 'FILE', help: 'the API token is the first line of FILE (mode 600: refused if group or others may read it); without it, HOLDFAST_TOKEN' },
  INSECURE_KEY_FILE_FLAG,
  { name: 'json', type: 'bool', help: 'JSON instead of text' },
];

const LIMIT_FLAG = (what: string): Flag => ({ name: 'limit', type: 'number', help: `the latest N ${what}, 1..1000 (default 20)` });

type Sub = 'devices' | 'run' | 'jobs' | 'job' | 'cancel' | 'audit' | 'token';

const FLAGS: Record<Sub, Flag[]> = {
  devices: COMMON_FLAGS,
  run: [
    { name: 'on', meta: 'SELECTOR', help: 'the devices: labels (site=berlin,class=pi4), ids (id=pi-1|pi-2), online or offline, * for all (required)' },
    { name: 'wait', type: 'bool', help: 'follow the job: a line per device as its outcome lands; exit 0 when all succeeded, else 1' },
    { name: 'wait-ms', type: 'number', help: 'with --wait, stop waiting after N ms (HF_ERR_TIMEOUT, exit 1; the job goes on)' },
    { name: 'timeout-ms', type: 'number', help: "how long each device has to answer once the command is sent, ms (default: the gateway's)" },
    { name: 'expires-in-ms', type: 'number', help: "a device that has not been sent the command N ms after the job was made won't get it (default: the gateway's)" },
    ...COMMON_FLAGS,
  ],
  jobs: [LIMIT_FLAG('jobs'), ...COMMON_FLAGS],
  job: COMMON_FLAGS,
  cancel: COMMON_FLAGS,
  audit: [LIMIT_FLAG('entries'), { name: 'verify', type: 'bool', help: 'check the hash chain instead: exit 0 and the head, or 1 naming the first bad entry' }, ...COMMON_FLAGS],
  token: [
    { name: 'operator', meta: 'NAME', help: 'log in as this operator; the token acts for them (required)' },
    { name: 'role', meta: ROLES.join('|'), help: "the token's role, at most the operator's (default: the operator's)" },
    { name: 'password-file', meta: 'FILE', help: 'the password is the first line of FILE (mode 600); without it, typed at the terminal or piped into stdin' },
    { name: 'out', meta: 'FILE', help: 'write the token to FILE, made with mode 600 (refused if it exists), for --token-file; without it, print it' },
    ...COMMON_FLAGS.filter((f) => f.name !== 'token-file'),
  ],
};

const SYNOPSIS: Record<Sub, [string, string]> = {
  devices: [
    'holdfast ctl devices [SELECTOR] [flags]',
    'Lists the devices the gateway knows, or those SELECTOR matches (site=berlin,class=pi4,online; id=pi-1|pi-2; !gpio; class!=pi3): a table of ID, ONLINE, TRANSPORT, LAST SEEN, LABELS and TEMP, or one JSON object per line with --json.',
  ],
  run: [
    'holdfast ctl run OP [ARGS-JSON|@FILE] --on SELECTOR [--wait] [flags]',
    'Makes a job: operation OP (info, exec, gpio.read, config.get, file.put, update, ...) with its arguments (a JSON object, or @FILE holding one) for the devices SELECTOR matches, and prints its id. With --wait, a line per device as its outcome lands (device, state, result or error code); Ctrl-C stops waiting, not the job (holdfast ctl cancel ID). --json prints the job (with --wait, the finished job and its targets) as JSON.',
  ],
  jobs: ['holdfast ctl jobs [--limit N] [flags]', 'Lists the latest jobs, newest first: id, operation, selector, who made it, when, the count of devices in each state.'],
  job: ['holdfast ctl job ID [flags]', 'Shows one job and a line per device: state, then the result or the error code and message.'],
  cancel: ['holdfast ctl cancel ID [flags]', 'Cancels what is still pending of a job (devices that finished keep their outcome).'],
  audit: ['holdfast ctl audit [--limit N] [--verify] [flags]', "Prints the latest audit entries, oldest first; with --verify, the verdict on the log's hash chain."],
  token: [
    'holdfast ctl token NAME --operator OP [--role R] [--password-file FILE] [--out FILE]',
    'Logs in as OP (the password as for holdfast operator add: never on the command line) and makes the API token NAME for the other subcommands, shown once (recorded in the audit log). The gateway keeps only its hash.',
  ],
};

const SUBCOMMANDS = `usage: holdfast ctl <subcommand> [flags]   (holdfast ctl <subcommand> --help for its flags)

  devices [SELECTOR]                          the devices, their state, labels and temperature
  run OP [ARGS-JSON] --on SELECTOR [--wait]   make a job; --wait: a line per device as it lands
  jobs [--limit N]                            the latest jobs
  job ID                                      one job, a line per device
  cancel ID                                   cancel what is still pending of a job
  audit [--limit N] [--verify]                the latest audit entries, or check the hash chain
  token NAME --operator OP [--out FILE]       log in and make an API token for the others
  drain NODE --cluster nats://HOST:PORT       hand every session of cluster node NODE to the others

Against --console URL (or HOLDFAST_CONSOLE; default ${DEFAULT_CONSOLE}) with the API token in
--token-file FILE (or HOLDFAST_TOKEN); drain over the cluster's NATS.
`;

/** The first line of the token file, or HOLDFAST_TOKEN; HF_ERR_OPTION when neither, or the file is unreadable, empty or loose. */
export function apiToken(v: Values, env: NodeJS.ProcessEnv, warn: (m: string) => void): string {
  const file = v['token-file'];
  if (typeof file === 'string') {
    let text: string;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw hfError(ErrorCode.OPTION, `--token-file ${file}: not a file`);
      if (st.size > MAX_TOKEN_FILE) throw hfError(ErrorCode.OPTION, `--token-file ${file}: larger than ${MAX_TOKEN_FILE} bytes`);
      const loose = checkSecretFile('token-file', file, v['insecure-key-file'] === true);
      if (loose !== null) warn(loose);
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if (isHfError(e)) throw e;
      throw hfError(ErrorCode.OPTION, `--token-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
    const token = text.split(/\r?\n/)[0].trim();
    if (token.length === 0) throw hfError(ErrorCode.OPTION, `--token-file ${file}: the first line is empty`);
    return token;
  }
  const token = env.HOLDFAST_TOKEN?.trim();
  if (token !== undefined && token.length > 0) return token;
  throw hfError(ErrorCode.OPTION, '--token-file FILE or HOLDFAST_TOKEN is required (make a token with: holdfast ctl token NAME --operator OP --out FILE)');
}

function consoleOf(v: Values, env: NodeJS.ProcessEnv): URL {
  if (typeof v.console === 'string') return consoleUrl(v.console, '--console');
  if (env.HOLDFAST_CONSOLE) return consoleUrl(env.HOLDFAST_CONSOLE, 'HOLDFAST_CONSOLE');
  return consoleUrl(DEFAULT_CONSOLE, 'the default console');
}

function client(v: Values, env: NodeJS.ProcessEnv): ConsoleClient {
  const url = consoleOf(v, env);
  const token = apiToken(v, env, (m) => process.stderr.write(`holdfast ctl: warning: ${m}\n`));
  return new ConsoleClient({ url, token });
}

function out(text: string): void {
  process.stdout.write(text);
}

function jsonLine(v: unknown): void {
  out(`${JSON.stringify(v)}\n`);
}

function whole(v: Values, name: string, min: number, max: number): number | undefined {
  const n = v[name];
  if (n === undefined) return undefined;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw hfError(ErrorCode.OPTION, `--${name} must be a whole number in ${min}..${max}, got ${String(n)}`);
  return n;
}

function args(rest: string[], sub: Sub, min: number, max: number, names: string): void {
  if (rest.length < min) throw hfError(ErrorCode.OPTION, `ctl ${sub} needs ${names}`);
  if (rest.length > max) throw hfError(ErrorCode.OPTION, `ctl ${sub} takes ${max === 0 ? 'no arguments' : names}, got ${rest.length}: ${rest.join(' ')}`);
}

/** The job's arguments: `text` as a JSON object, or the one in the file `@FILE`. */
export function jobArgs(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let json = text;
  let from = 'ARGS-JSON';
  if (text.startsWith('@')) {
    const file = text.slice(1);
    from = `ARGS-JSON ${text}`;
    try {
      json = readFileSync(file, 'utf8');
    } catch (e) {
      throw hfError(ErrorCode.OPTION, `${from}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
  }
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw hfError(ErrorCode.OPTION, `${from}: not JSON (${(e as Error).message})`, e);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw hfError(ErrorCode.OPTION, `${from}: must be a JSON object such as {"path": "/srv/x"}, got ${json.trim().slice(0, 60)}`);
  return v as Record<string, unknown>;
}

const enc = encodeURIComponent;

async function devices(api: () => ConsoleClient, v: Values, rest: string[]): Promise<number> {
  args(rest, 'devices', 0, 1, 'at most one SELECTOR');
  const q = rest.length === 0 ? '' : `?selector=${enc(rest[0])}`;
  const c = api();
  const r = await c.get<{ devices: DeviceView[] }>(`api/devices${q}`);
  if (v.json === true) for (const d of r.devices) jsonLine(d);
  else if (r.devices.length === 0) out(rest.length === 0 ? 'no devices\n' : `no device matches ${rest[0]}\n`);
  else out(devicesTable(r.devices));
  return EXIT.OK;
}

/** Exit 0 when every target succeeded; else the one line naming the others and their codes, exit 1. */
function verdict(job: Job, targets: Target[]): number {
  const bad = targets.filter((t) => t.state !== 'succeeded');
  if (bad.length === 0) return EXIT.OK;
  const code = bad.find((t) => t.errorCode !== null)?.errorCode ?? ErrorCode.OP_FAILED;
  const each = bad.slice(0, 20).map((t) => `${t.deviceId} ${t.state}${t.errorCode === null ? '' : ` ${t.errorCode}`}`);
  process.stderr.write(`holdfast ctl: ${code}: job ${job.id}: ${bad.length} of ${targets.length} devices did not succeed: ${each.join(', ')}${bad.length > 20 ? ', ...' : ''}\n`);
  return EXIT.FAILED;
}

async function run(api: () => ConsoleClient, v: Values, rest: string[]): Promise<number> {
  args(rest, 'run', 1, 2, 'OP and at most one ARGS-JSON');
  if (typeof v.on !== 'string' || v.on.trim() === '') throw hfError(ErrorCode.OPTION, 'ctl run needs --on SELECTOR (labels such as class=pi4, id=pi-1, online, or * for all)');
  if (v['wait-ms'] !== undefined && v.wait !== true) throw hfError(ErrorCode.OPTION, '--wait-ms goes with --wait');
  const waitMs = whole(v, 'wait-ms', 1, Number.MAX_SAFE_INTEGER);
  const body: Record<string, unknown> = { op: rest[0], args: jobArgs(rest[1]), selector: v.on };
  const timeoutMs = whole(v, 'timeout-ms', 1, 0xffffffff);
  const expiresInMs = whole(v, 'expires-in-ms', 1, Number.MAX_SAFE_INTEGER);
  if (timeoutMs !== undefined) body.timeoutMs = timeoutMs;
  if (expiresInMs !== undefined) body.expiresInMs = expiresInMs;
  const c = api();
  // With --wait, the event stream opens first: every outcome after the POST is on it (ctl-follow.ts).
  const follower = v.wait === true ? await JobFollower.start(c, c.endpoint) : null;
  let job: Job;
  try {
    job = (await c.post<{ job: Job }>('api/jobs', body)).job;
  } catch (e) {
    follower?.close();
    throw e;
  }
  if (follower === null) {
    if (v.json === true) jsonLine(job);
    else out(`${job.id}\n`);
    return EXIT.OK;
  }
  if (v.json !== true) out(`${job.id}\n`);
  let width = 0;
  const r = await follower.follow(job, waitMs, (op, t) => {
    if (v.json === true) return;
    width = Math.max(width, t.deviceId.length);
    out(`${targetLine(op, t, width)}\n`);
  });
  if (v.json === true) jsonLine(r);
  return verdict(r.job, r.targets);
}

async function jobs(api: () => ConsoleClient, v: Values, rest: string[]): Promise<number> {
  args(rest, 'jobs', 0, 0, '');
  const limit = whole(v, 'limit', 1, 1000) ?? 20;
  const c = api();
  const r = await c.get<{ jobs: Job[] }>(`api/jobs?limit=${limit}`);
  if (v.json === true) for (const j of r.jobs) jsonLine(j);
  else out(r.jobs.length === 0 ? 'no jobs yet\n' : jobsTable(r.jobs));
  return EXIT.OK;
}

function showJob(job: Job, targets: Target[]): void {
  const made = new Date(job.createdAt).toISOString();
  out(`job ${job.id}: ${job.op} on ${job.selector} by ${job.createdBy} at ${made}${job.cancelledAt === null ? '' : ', cancelled'}; ${stateCounts(job)}\n`);
  const width = Math.max(0, ...targets.map((t) => t.deviceId.length));
  for (const t of targets) out(`${targetLine(job.op, t, width)}\n`);
}

async function job(api: () => ConsoleClient, v: Values, rest: string[]): Promise<number> {
  args(rest, 'job', 1, 1, 'one job ID');
  const c = api();
  const r = await c.get<{ job: Job; targets: Target[] }>(`api/jobs/${enc(rest[0])}`);
  if (v.json === true) jsonLine(r);
  else showJob(r.job, r.targets);
  return EXIT.OK;
}

async function cancel(api: () => ConsoleClient, v: Values, rest: string[]): Promise<number> {
  args(rest, 'cancel', 1, 1, 'one job ID');
  const c = api();
  const r = await c.post<{ job: Job }>(`api/jobs/${enc(rest[0])}/cancel`);
  if (v.json === true) jsonLine(r.job);
  else out(`job ${r.job.id} cancelled; ${stateCounts(r.job)}\n`);
  return EXIT.OK;
}

async function audit(api: () => ConsoleClient, v: Values, rest: string[]): Promise<number> {
  args(rest, 'audit', 0, 0, '');
  if (v.verify === true) {
    if (v.limit !== undefined) throw hfError(ErrorCode.OPTION, '--limit does not go with --verify (it checks the whole log)');
    const c = api();
    const r = await c.get<AuditVerdict>('api/audit/verify');
    if (v.json === true) {
      jsonLine(r);
      return r.ok ? EXIT.OK : EXIT.FAILED;
    }
    if (!r.ok) throw hfError(ErrorCode.AUDIT, `the audit log of ${c.url}: ${r.message}`);
    out(`the audit log of ${c.url}: ${r.count} ${r.count === 1 ? 'entry' : 'entries'}, chain intact\nhead: seq ${r.head.seq} sha256 ${r.head.hash}\n`);
    return EXIT.OK;
  }
  const limit = whole(v, 'limit', 1, 1000) ?? 20;
  const c = api();
  const r = await c.get<{ entries: AuditEntry[] }>(`api/audit?limit=${limit}`);
  const entries = [...r.entries].reverse();
  if (v.json === true) for (const e of entries) jsonLine(e);
  else out(entries.length === 0 ? 'the audit log is empty\n' : auditTable(entries));
  return EXIT.OK;
}

/** The password for `name`: --password-file, else typed once at the terminal, else piped into stdin. */
async function password(v: Values, name: string): Promise<string> {
  if (typeof v['password-file'] === 'string') return passwordFromFile(v['password-file'], v['insecure-key-file'] === true, (m) => process.stderr.write(`holdfast ctl: warning: ${m}\n`));
  if (!process.stdin.isTTY) return passwordFromPipe();
  const pw = await readHidden(`password for ${name}: `);
  if (pw.length === 0) throw hfError(ErrorCode.OPTION, 'no password typed');
  return pw;
}

/** Makes `file` with mode 600 and `text` in it; one that exists is refused (HF_ERR_OPTION), never overwritten. */
function writeSecret(file: string, text: string): void {
  try {
    writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw hfError(ErrorCode.OPTION, `--out ${file}: ${code === 'EEXIST' ? 'exists already (a token is never written over another file)' : (code ?? (e as Error).message)}`, e);
  }
}

async function token(v: Values, rest: string[], env: NodeJS.ProcessEnv): Promise<number> {
  args(rest, 'token', 1, 1, 'one token NAME');
  const name = rest[0];
  if (typeof v.operator !== 'string' || v.operator === '') throw hfError(ErrorCode.OPTION, 'ctl token needs --operator NAME (who logs in; the token acts for them)');
  if (v.role !== undefined && !isRole(v.role)) throw hfError(ErrorCode.OPTION, `--role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(v.role)}`);
  if (typeof v.out === 'string' && existsSync(v.out)) throw hfError(ErrorCode.OPTION, `--out ${v.out}: exists already (a token is never written over another file)`);
  const c = new ConsoleClient({ url: consoleOf(v, env), token: null });
  const s = await c.login(v.operator, await password(v, v.operator));
  let made: { token: string; info: { name: string; role: string; operator: string } };
  try {
    made = await c.post('api/tokens', { name, ...(v.role === undefined ? {} : { role: v.role }) }, sessionHeaders(s));
  } finally {
    await c.post('api/logout', {}, sessionHeaders(s)).catch(() => {});
  }
  if (typeof v.out === 'string') {
    writeSecret(v.out, `${made.token}\n`);
    if (v.json === true) jsonLine({ file: v.out, info: made.info });
    else out(`token ${made.info.name} (${made.info.role}, for ${made.info.operator}) written to ${v.out}, mode 600: holdfast ctl devices --token-file ${v.out}\n`);
    return EXIT.OK;
  }
  if (v.json === true) jsonLine(made);
  else out(`${made.token}\n`);
  return EXIT.OK;
}

const RUN: Record<Exclude<Sub, 'token'>, (api: () => ConsoleClient, v: Values, rest: string[]) => Promise<number>> = { devices, run, jobs, job, cancel, audit };

function isSub(s: string | undefined): s is Sub {
  return s !== undefined && Object.hasOwn(FLAGS, s);
}

export async function ctlCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...more] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    out(SUBCOMMANDS);
    return EXIT.OK;
  }
  // A cluster's subcommand: over NATS, not the management API.
  if (sub === 'drain') return ctlDrain(more);
  if (!isSub(sub))
    throw hfError(
      ErrorCode.OPTION,
      sub === undefined
        ? 'ctl needs a subcommand: devices, run, jobs, job, cancel, audit, token or drain (holdfast ctl --help)'
        : `unknown ctl subcommand ${JSON.stringify(sub)}: devices, run, jobs, job, cancel, audit, token or drain`,
    );
  const { values: v, help, rest } = parseArgs(more, FLAGS[sub]);
  if (help) {
    out(usage(...SYNOPSIS[sub], FLAGS[sub]));
    return EXIT.OK;
  }
  if (sub === 'token') return refusalLine(() => token(v, rest, env));
  let c: ConsoleClient | null = null;
  const api = (): ConsoleClient => {
    c ??= client(v, env);
    return c;
  };
  return refusalLine(() => RUN[sub](api, v, rest));
}

/** Runs `fn`; a refusal of the API becomes its one line and exit 1 (anything else goes to runCommand's handling). */
async function refusalLine(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof ApiRefusal)) throw e;
    // The API's code, whatever it is (HF_ERR_OPTION from the gateway is still a refusal at run time: exit 1).
    process.stderr.write(`holdfast ctl: ${e.code}: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return EXIT.FAILED;
  }
}
