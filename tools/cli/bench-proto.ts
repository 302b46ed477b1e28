/**
 * The little protocol `bench` speaks with a gateway run with `--bench`, as plain mux messages:
 *
 *   device -> gateway   [0x00] "c2s" n        count the next n data messages, answer "done" n
 *   device -> gateway   [0x00] "s2c" n size   send n data messages of `size` bytes now
 *   gateway -> device   [0x00] "done" n       all n data messages arrived
 *   either way          [0x01] ...            a data message (ping-pong: echoed back as it is)
 *
 * The gateway side (`benchResponder`) echoes every data message unless it is counting for "c2s".
 */
import type { Mux } from '../../targets/host/app/mux';

export const CMD = 0x00;
export const DATA = 0x01;

export function command(text: string): Buffer {
  return Buffer.concat([Buffer.from([CMD]), Buffer.from(text)]);
}

export function parseCommand(m: Buffer): string[] | null {
  return m.length > 0 && m[0] === CMD ? m.subarray(1).toString().split(' ') : null;
}

/** Answers bench commands on one session's mux (gateway side). */
export function benchResponder(mux: Mux): void {
  let counting = 0;
  let target = 0;
  const queue: Buffer[] = [];
  const flush = (): void => {
    while (queue.length > 0) {
      if (!mux.send(queue[0])) return;
      queue.shift();
    }
  };
  mux.on('drain', flush);
  const send = (m: Buffer): void => {
    queue.push(m);
    if (queue.length === 1) flush();
  };
  mux.on('message', (m: Buffer) => {
    const cmd = parseCommand(m);
    if (cmd === null) {
      if (target > 0) {
        if (++counting === target) {
          send(command(`done ${target}`));
          target = 0;
        }
      } else send(m);
      return;
    }
    if (cmd[0] === 'c2s') {
      counting = 0;
      target = Number(cmd[1]);
      send(command('ready'));
    } else if (cmd[0] === 's2c') {
      const n = Number(cmd[1]);
      const size = Math.max(1, Number(cmd[2]));
      const body = Buffer.alloc(size, 0x61);
      body[0] = DATA;
      // Bounded: the queue holds at most n references to one buffer.
      for (let i = 0; i < n && i < 10_000_000; i++) send(body);
    }
  });
}
