/**
 * The `ssh -L` row: Debian's OpenSSH, as RECIPES.md and test/flash.scenario.test.ts run it. An sshd
 * of the row's own in the foreground (`sshd -D -e -f CONFIG`, the absolute path sshd needs to re-exec
 * itself) on 127.0.0.1 and a free port, throw-away ed25519 host and user keys in the row's folder
 * (`StrictModes no`: the temporary folder's modes are not sshd's business), then
 * `ssh -N -L LPORT:127.0.0.1:T` with that key, checking the host key against a known_hosts file
 * written from the host key. Both run with their defaults for ciphers and compression (none); what
 * was negotiated is read from ssh's -v output. Without sshd or ssh the row is skipped.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, listening, onPath, Proc } from './proc';
import { type Row, Skip } from './row';
import { SSHD, ensurePrivsepDir, sshKeygen, writeSshdConfig } from '../../tools/throwaway-sshd';

export { SSHD };

/** sshd and the tunnel's ssh, both running; stops both (ssh first). */
interface Tunnel {
  sshd: Proc;
  ssh: Proc;
  port: number;
}

async function startTunnel(dir: string, target: number, ms: number): Promise<Tunnel> {
  const user = os.userInfo().username;
  const hostPub = fs.readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  for (let attempt = 0; ; attempt++) {
    const sshPort = await freePort();
    const sshd = new Proc('sshd', SSHD, ['-D', '-e', '-f', writeSshdConfig(dir, sshPort, { forwarding: true })]);
    try {
      await sshd.waitFor(/Server listening on 127\.0\.0\.1 port/, ms);
    } catch (e) {
      await sshd.stop();
      if (attempt === 2) throw e;
      continue;
    }
    const knownHosts = path.join(dir, 'known_hosts');
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${sshPort} ${hostPub}\n`);
    const port = await freePort();
    const ssh = new Proc('ssh', 'ssh', [
      '-v',
      '-N',
      '-L',
      `127.0.0.1:${port}:127.0.0.1:${target}`,
      '-i',
      path.join(dir, 'user_key'),
      '-p',
      String(sshPort),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ExitOnForwardFailure=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'ConnectTimeout=10',
      `${user}@127.0.0.1`,
    ]);
    try {
      await Promise.race([listening(port, ms, ssh), ssh.exited.then((how) => Promise.reject(new Error(`ssh ${how}:\n${ssh.tail()}`)))]);
    } catch (e) {
      await ssh.stop();
      await sshd.stop();
      throw e;
    }
    return { sshd, ssh, port };
  }
}

export const ssh: Row = {
  name: 'ssh',
  about: 'ssh -N -L through an sshd of its own (OpenSSH, default cipher, no compression)',
  start: async (ctx) => {
    const missing = [fs.existsSync(SSHD) ? null : SSHD, ...['ssh', 'ssh-keygen'].map((b) => (onPath(b) ? null : b))].filter((x) => x !== null);
    if (missing.length > 0) throw new Skip(`${missing.join(', ')} not installed (Debian: apt-get install openssh-server openssh-client; .ci/run does)`);
    const dir = path.join(ctx.dir, 'ssh');
    fs.mkdirSync(dir, { mode: 0o700 });
    sshKeygen(path.join(dir, 'host_key'), 'holdfast-bench-forward');
    sshKeygen(path.join(dir, 'user_key'), 'holdfast-bench-forward');
    fs.copyFileSync(path.join(dir, 'user_key.pub'), path.join(dir, 'authorized_keys'));
    ensurePrivsepDir();
    const t = await startTunnel(dir, ctx.target, ctx.setupMs);
    const version = /OpenSSH_[^\s,]+/.exec(t.ssh.log)?.[0] ?? '?';
    const cipher = /kex: server->client cipher: (\S+) MAC: (\S+)/.exec(t.ssh.log);
    return {
      port: t.port,
      info: { version, cipher: cipher ? `${cipher[1]}${cipher[2] === '<implicit>' ? '' : ` ${cipher[2]}`}` : '?' },
      stop: async () => {
        await t.ssh.stop();
        await t.sshd.stop();
      },
    };
  },
};
