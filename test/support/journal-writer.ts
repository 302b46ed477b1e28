/**
 * Child process for test/file-storage.test.ts: appends journal MESSAGE records through FileStorage in
 * a tight loop and prints the count of records whose append returned, one line per append, until it
 * is killed. Run as `node -r tsx/cjs journal-writer.ts DIR`. An existing journal in DIR is continued
 * (numbering goes on from its record count). Message i carries i as u32 big-endian, then i % 40
 * bytes of i & 0xff, so the loader can check every record. It prints `timeout` and exits on its own
 * after 15 s, so a lost parent never leaves it running.
 */
import { writeSync } from 'node:fs';
import { Journal, putU32 } from '../../firmware/journal';
import { FileStorage } from '../../targets/node/storage';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: journal-writer.ts DIR');
const storage = new FileStorage(dir);
const journal = new Journal(storage, 64);
const old = Journal.load(storage);
let n = 0;
if (old === null) {
  journal.checkpoint(new Uint8Array([0xc0, 0xde]));
} else {
  n = old.records.length;
  journal.resumeAt(storage.read(journal.key)!.length - old.torn);
}
/**
 * Writes a line to fd 1 before returning. Not process.stdout.write: to a pipe it may queue the line
 * in memory, and this loop never yields, so the parent would see counts long after the appends.
 */
function say(line: string): void {
  const b = Buffer.from(line + '\n');
  let at = 0;
  while (at < b.length) {
    try {
      at += writeSync(1, b, at, b.length - at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e; // a full non-blocking pipe: retry
    }
  }
}

say(`start ${n}`);
const msg = new Uint8Array(44);
const stopAt = Date.now() + 15_000;
while (Date.now() < stopAt) {
  const len = 4 + (n % 40);
  putU32(msg, 0, n);
  msg.fill(n & 0xff, 4, len);
  journal.pushed(msg, 0, len);
  n++;
  say(String(n));
}
say('timeout');
