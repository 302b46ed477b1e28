/**
 * Running things on a board with the system's OpenSSH client (`ssh`, `scp`), for `holdfast flash`.
 *
 * Every child is spawned with an argument array (no local shell). What runs on the board is always
 * `sh -c SCRIPT`, SCRIPT quoted with `shq`, because ssh hands its command to the board's login shell
 * as one string. Secrets never go into a script or an argument: they travel on the child's stdin,
 * which ssh forwards to the remote command.
 *
 * Host keys: `StrictHostKeyChecking=accept-new` (trust on first use): a board seen for the first time
 * is recorded in known_hosts, a board whose key changed is refused. `knownHosts` points ssh at another
 * known_hosts file (a provisioning workstation's own, or a test's).
 */
import { spawn } from 'node:child_process';
import { ErrorCode, hfError } from '../../firmware/errors';

export interface SshTarget {
  /** Login name; null: ssh's default (the local user, or ~/.ssh/config). */
  user: string | null;
  /** Host name or address (an IPv6 address without brackets). */
  host: string;
  port: number;
  /** Private key file (`-i`, with IdentitiesOnly); null: ssh's defaults and agent. */
  identity: string | null;
  /** known_hosts file; null: the user's own. */
  knownHosts: string | null;
  /** Seconds to wait for the TCP connection and the SSH handshake (ConnectTimeout). */
  connectTimeoutS: number;
}

/** What a child did. `stdout`/`stderr` keep at most the last 64 KiB each. */
export interface Ran {
  /** Exit status; null when killed by a signal (or by our timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Killed because it ran longer than its timeout. */
  timedOut: boolean;
}

const KEEP = 64 * 1024;
const OPENSSH = 'Debian: apt-get install openssh-client';

/** "user@host" or "host" (host may be "[v6]"); throws HF_ERR_OPTION naming --host. */
export function parseSshHost(s: string): { user: string | null; host: string } {
  const at = s.lastIndexOf('@');
  const user = at < 0 ? null : s.slice(0, at);
  let host = at < 0 ? s : s.slice(at + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  // No leading '-' anywhere: ssh would read it as an option.
  if (user !== null && !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/.test(user)) throw hfError(ErrorCode.OPTION, `--host: user ${JSON.stringify(user)} is not a login name`);
  if (!/^[A-Za-z0-9_:][A-Za-z0-9._:%-]{0,252}$/.test(host)) throw hfError(ErrorCode.OPTION, `--host must be USER@HOST or HOST, got ${JSON.stringify(s)}`);
  return { user, host };
}

/** `s` as one word for a POSIX shell: single-quoted, `'` written as `'\''`. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The -o options ssh and scp share. */
function commonOptions(t: SshTarget): string[] {
  const o = [
    '-o',
    'BatchMode=yes', // never ask for a password or passphrase: fail instead
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    `ConnectTimeout=${t.connectTimeoutS}`,
    '-o',
    'ServerAliveInterval=10',
    '-o',
    'ServerAliveCountMax=3',
    '-o',
    'LogLevel=ERROR', // no "Permanently added ..." chatter; errors still come
  ];
  if (t.knownHosts !== null) o.push('-o', `UserKnownHostsFile=${t.knownHosts}`);
  if (t.identity !== null) o.push('-i', t.identity, '-o', 'IdentitiesOnly=yes');
  return o;
}

/** `ssh` arguments for running `command` (one string, parsed by the board's login shell). */
export function sshArgs(t: SshTarget, command: string): string[] {
  return ['-T', '-p', String(t.port), ...commonOptions(t), ...(t.user !== null ? ['-l', t.user] : []), '--', t.host, command];
}

/** How the target is written for people: "user@host -p 22". */
export function describeTarget(t: SshTarget): string {
  return `${t.user !== null ? `${t.user}@` : ''}${t.host}${t.port !== 22 ? ` -p ${t.port}` : ''}`;
}

/** `s` as one shell word, quoted only when it has to be (for commands printed for people). */
export function shWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : shq(s);
}

/** The ssh command a person would type to reach the board (for printed hints; no -o defaults). */
export function sshCommandLine(t: SshTarget): string {
  const a = ['ssh'];
  if (t.port !== 22) a.push('-p', String(t.port));
  if (t.identity !== null) a.push('-i', t.identity);
  if (t.knownHosts !== null) a.push('-o', `UserKnownHostsFile=${t.knownHosts}`);
  a.push(`${t.user !== null ? `${t.user}@` : ''}${t.host}`);
  return a.map(shWord).join(' ');
}

/**
 * Runs `bin args`; `stdin` (if any) is written and closed. Kills the child by its PID after
 * `timeoutMs`. A missing `bin` is HF_ERR_UNSUPPORTED, with `install` as the hint.
 */
export function runChild(bin: string, args: string[], opts: { stdin?: string; timeoutMs: number; cwd?: string; install?: string }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-KEEP)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-KEEP)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') reject(hfError(ErrorCode.UNSUPPORTED, `${bin} is not installed here${opts.install ? ` (${opts.install})` : ''}`));
      else reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
    // A board that exits before reading all of stdin closes the pipe: that shows in its exit status.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');
  });
}

/**
 * Runs `script` with `sh -c` on the board. `stdin` is what the script reads (secrets go here, never
 * into the script).
 */
export function runOnBoard(t: SshTarget, script: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return runChild('ssh', sshArgs(t, `sh -c ${shq(script)}`), { stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? 60_000, install: OPENSSH });
}

/** Copies the local file `from` to `to` on the board with scp. */
export function copyToBoard(t: SshTarget, from: string, to: string, timeoutMs = 300_000): Promise<Ran> {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  const dest = `${t.user !== null ? `${t.user}@` : ''}${host}:${to}`;
  return runChild('scp', ['-q', '-P', String(t.port), ...commonOptions(t), '--', from, dest], { timeoutMs, install: OPENSSH });
}

/** ssh exits with 255 when it could not connect or log in (the remote command's own status otherwise). */
export function sshFailed(r: Ran): boolean {
  return r.timedOut || r.code === 255 || r.code === null;
}

/** One line on why a child failed: its last stderr line(s), or the timeout, or the status. */
export function whyFailed(r: Ran, timeoutMs?: number): string {
  if (r.timedOut) return `no answer within ${Math.round((timeoutMs ?? 0) / 1000)} s`;
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const tail = lines.slice(-3).join(' / ');
  return tail.length > 0 ? tail : `exit status ${r.code ?? 'killed'}`;
}
