/**
 * The rows that are not holdfast: `raw` (straight to the target: the floor and ceiling of the
 * loopback path), `socat` as a plain TCP relay, and `ssh` (OpenSSH's `ssh -L`, bench/forward/ssh.ts).
 */
import { execFileSync } from 'node:child_process';
import { freePort, listening, onPath, Proc } from './proc';
import { type Row, Skip } from './row';

export const raw: Row = {
  name: 'raw',
  about: 'the client connects straight to the target',
  start: async (ctx) => ({ port: ctx.target, info: {}, stop: async () => {} }),
};

function socatVersion(): string {
  try {
    const m = /socat version (\S+)/.exec(execFileSync('socat', ['-V'], { encoding: 'utf8', timeout: 5000 }));
    return m ? m[1] : '?';
  } catch {
    return '?';
  }
}

export const socat: Row = {
  name: 'socat',
  about: 'socat TCP-LISTEN:P,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:T (a process per connection)',
  start: async (ctx) => {
    if (!onPath('socat')) throw new Skip('socat is not installed (Debian: apt-get install socat; .ci/run does)');
    const port = await freePort();
    const p = new Proc('socat', 'socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${ctx.target}`]);
    try {
      await Promise.race([listening(port, ctx.setupMs, p), p.exited.then((how) => Promise.reject(new Error(`socat ${how}:\n${p.tail()}`)))]);
    } catch (e) {
      await p.stop();
      throw e;
    }
    return { port, info: { version: socatVersion() }, stop: () => p.stop() };
  },
};
