/**
 * A port on 127.0.0.1 nothing listens on now, from 20000..32767: below the range Linux hands out for
 * outgoing connections (32768 and up), so the many client sockets of a load test or a benchmark
 * cannot take it between this check and its use.
 */
import * as net from 'node:net';

export async function freeLowPort(tries = 100): Promise<number> {
  for (let i = 0; i < tries; i++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port found on 127.0.0.1 in 20000-32767');
}
