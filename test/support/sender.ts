/**
 * A device process for the kill -9 test: sends numbered messages (u32 index + padding) through the
 * host target's connect() with a journal in STATE, printing "accepted N" after each send() that
 * returned true, until TOTAL are accepted. Resumes from the journal when it has one.
 *   node -r tsx/cjs test/support/sender.ts GATEWAY_URL TCP|none KEY STATE TOTAL
 */
import { connect } from '../../targets/host/device/device';

const [url, tcp, key, state, totalArg] = process.argv.slice(2);
const total = Number(totalArg);
const ch = connect({ gateway: url, tcp: tcp === 'none' ? null : tcp, id: 'pi-1', key, stateDir: state });
const out: string[] = [];
const flush = (): void => {
  if (out.length > 0) process.stdout.write(out.splice(0).join(''));
};
if (ch.resumed) process.stdout.write(`resumed at ${ch.accepted}\n`);
const t0 = Date.now();
ch.on('open', () => process.stdout.write(`open after ${Date.now() - t0} ms\n`));
let i = ch.accepted;
function pump(): void {
  while (i < total) {
    const m = Buffer.alloc(200, i & 0xff);
    m.writeUInt32BE(i, 0);
    if (!ch.send(m)) {
      flush();
      ch.once('drain', pump);
      return;
    }
    out.push(`accepted ${i}\n`);
    i++;
    if (out.length >= 64) flush();
  }
  flush();
  process.stdout.write('all accepted\n');
}
pump();
ch.on('close', (e?: Error) => {
  process.stdout.write(`closed ${e ? e.message : 'clean'}\n`);
});
setInterval(() => {}, 1 << 30);
