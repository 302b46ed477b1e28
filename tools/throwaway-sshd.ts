/**
 * The pieces of a throw-away OpenSSH server for tests and benchmarks (RECIPES.md): ed25519 keys made
 * with `ssh-keygen`, an sshd_config for 127.0.0.1 and one port in a folder of its own, and sshd's
 * privilege-separation directory when running as root. The caller runs `sshd -D -e -f CONFIG` (the
 * absolute path, `SSHD`: sshd re-executes itself) and stops it by its PID.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SSHD = '/usr/sbin/sshd';

/** Makes an ed25519 key pair `file` and `file.pub` without a passphrase. */
export function sshKeygen(file: string, comment: string): void {
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    throw new Error(`ssh-keygen: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`);
  }
}

export interface SshdConfig {
  /** Let clients forward ports (`ssh -L`). Default false. */
  forwarding?: boolean;
  /** Serve SFTP (scp speaks it since OpenSSH 9.0). Default false. */
  sftp?: boolean;
}

/**
 * Writes `dir/sshd_config` for 127.0.0.1:`port`: host key `dir/host_key`, keys let in from
 * `dir/authorized_keys`, public keys only, `StrictModes no` (the temporary folder's modes and owners
 * are not sshd's business). Returns its path.
 */
export function writeSshdConfig(dir: string, port: number, o: SshdConfig = {}): string {
  const conf = path.join(dir, 'sshd_config');
  const lines = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `AllowTcpForwarding ${o.forwarding === true ? 'yes' : 'no'}`,
    'X11Forwarding no',
    'PrintMotd no',
  ];
  if (o.sftp === true) lines.push('Subsystem sftp internal-sftp');
  fs.writeFileSync(conf, `${lines.join('\n')}\n`);
  return conf;
}

/** sshd running as root insists on its privilege-separation directory (Debian's ssh.service makes it; nothing does here). */
export function ensurePrivsepDir(): void {
  if (process.getuid?.() === 0 && !fs.existsSync('/run/sshd')) fs.mkdirSync('/run/sshd', { mode: 0o755 });
}
