/**
 * FileStorage (targets/node/storage.ts), each test in a fresh temporary directory: values, atomic
 * replacement, appends (and their descriptor after a replacement), removal, key checks, storage
 * errors, and a journal written by a process killed with SIGKILL mid-stream.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Journal, Rec, getU32 } from '../firmware/journal';
import { FileStorage, REMOVED_CHECK_MS } from '../targets/node/storage';
import { within } from './support/within';
import { failure } from './support/errors';

const ROOT = path.resolve(__dirname, '..');
const WRITER = path.join(__dirname, 'support', 'journal-writer.ts');
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));

/** Runs `body` with a fresh temporary directory, removed afterwards however the body ends. */
function inTemp(body: (tmp: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-storage-'));
    try {
      await body(tmp);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  };
}

/** Descriptors this process holds open on files under `dir` (Linux; [] where /proc is missing). */
function openUnder(dir: string): string[] {
  if (!fs.existsSync('/proc/self/fd')) return [];
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir + path.sep)) out.push(target);
    } catch {
      // the descriptor readdir itself used, already closed
    }
  }
  return out;
}

test(
  'read of a missing key is null; write/read round trip; the bytes read are the caller’s',
  inTemp((tmp) => {
    const st = new FileStorage(path.join(tmp, 's'));
    assert.is(st.read('journal'), null);
    st.write('journal', bytes('hello'));
    assert.is(text(st.read('journal')), 'hello');
    const got = st.read('journal')!;
    assert.instance(got, Uint8Array);
    got[0] = 0;
    assert.is(text(st.read('journal')), 'hello');
    st.write('empty', new Uint8Array(0));
    assert.equal(st.read('empty'), new Uint8Array(0), 'an empty value is not a missing one');
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    st.write('big', big);
    assert.ok(Buffer.from(st.read('big')!).equals(Buffer.from(big)));
    // Another FileStorage on the same directory sees the same values.
    assert.is(text(new FileStorage(path.join(tmp, 's')).read('journal')), 'hello');
  }),
);

test(
  'write replaces by rename: new inode, no KEY.tmp left behind, file mode 0600',
  inTemp((tmp) => {
    const dir = path.join(tmp, 's');
    const st = new FileStorage(dir);
    st.write('k', new Uint8Array(5000).fill(1));
    const ino = fs.statSync(path.join(dir, 'k')).ino;
    st.write('k', bytes('abc'));
    assert.is(text(st.read('k')), 'abc', 'shorter value: nothing of the old one left');
    assert.is.not(fs.statSync(path.join(dir, 'k')).ino, ino, 'a new file, not the old one rewritten in place');
    assert.equal(fs.readdirSync(dir), ['k']);
    assert.is(fs.statSync(path.join(dir, 'k')).mode & 0o777, 0o600);
  }),
);

test(
  'a stale KEY.tmp from a crash breaks neither reads nor the next write',
  inTemp((tmp) => {
    const dir = path.join(tmp, 's');
    const st = new FileStorage(dir);
    st.write('snap', bytes('old'));
    fs.writeFileSync(path.join(dir, 'snap.tmp'), bytes('torn garbage that is longer than the value'));
    assert.is(text(st.read('snap')), 'old');
    st.write('snap', bytes('new'));
    assert.is(text(st.read('snap')), 'new');
    assert.equal(fs.readdirSync(dir), ['snap']);
    // A stale .tmp for a key that has no value yet.
    fs.writeFileSync(path.join(dir, 'fresh.tmp'), bytes('xx'));
    assert.is(st.read('fresh'), null);
    st.write('fresh', bytes('v'));
    assert.is(text(st.read('fresh')), 'v');
    assert.equal(fs.readdirSync(dir).sort(), ['fresh', 'snap']);
  }),
);

test(
  'append creates the value and extends it; only data[off, off+len) is written',
  inTemp((tmp) => {
    const dir = path.join(tmp, 's');
    const st = new FileStorage(dir);
    st.append('log', bytes('xxABCxx'), 2, 3);
    assert.is(text(st.read('log')), 'ABC');
    assert.is(fs.statSync(path.join(dir, 'log')).mode & 0o777, 0o600);
    st.append('log', bytes('DE'), 0, 2);
    st.append('log', bytes('zzz'), 1, 0);
    st.append('log', bytes('F'), 0, 1);
    assert.is(text(st.read('log')), 'ABCDEF');
    const big = new Uint8Array(300_000).fill(0x41);
    st.append('log', big, 0, big.length);
    assert.is(st.read('log')!.length, 6 + 300_000);
    // Keys are independent.
    st.append('other', bytes('1'), 0, 1);
    assert.is(text(st.read('other')), '1');
    assert.is(st.read('log')!.length, 300_006);
    st.close();
  }),
);

test(
  'append after write goes to the new file, not the replaced one',
  inTemp((tmp) => {
    const dir = path.join(tmp, 's');
    const st = new FileStorage(dir);
    st.append('j', bytes('stale'), 0, 5); // opens the append descriptor
    st.write('j', bytes('CK')); // replaces the file under it
    assert.equal(openUnder(dir), [], 'the descriptor on the replaced file is closed');
    st.append('j', bytes('1'), 0, 1);
    st.append('j', bytes('2'), 0, 1);
    assert.is(text(st.read('j')), 'CK12');
    st.write('j', bytes('CK2'));
    st.append('j', bytes('3'), 0, 1);
    assert.is(text(st.read('j')), 'CK23');
    assert.ok(
      openUnder(dir).every((f) => !f.endsWith('(deleted)')),
      'no descriptor on a deleted file',
    );
    st.close();
    assert.equal(openUnder(dir), []);
  }),
);

test(
  'remove: then read is null; remove of a missing key is fine; append after remove starts afresh',
  inTemp((tmp) => {
    const dir = path.join(tmp, 's');
    const st = new FileStorage(dir);
    st.write('a', bytes('x'));
    st.remove('a');
    assert.is(st.read('a'), null);
    st.remove('a');
    st.remove('never-there');
    st.append('b', bytes('old'), 0, 3);
    st.remove('b');
    assert.is(st.read('b'), null);
    assert.equal(openUnder(dir), [], 'the append descriptor went with the file');
    st.append('b', bytes('new'), 0, 3);
    assert.is(text(st.read('b')), 'new');
    st.close();
    assert.equal(fs.readdirSync(dir), ['b']);
  }),
);

test(
  'keys: 1..128 of [A-Za-z0-9._-], starting alphanumeric, not ending .tmp; others are HF_ERR_OPTION',
  inTemp((tmp) => {
    const dir = path.join(tmp, 's');
    const st = new FileStorage(dir);
    for (const key of ['a', 'journal', 'A.b-c_d', '0', 'x'.repeat(128), 'x.tmp2', 'tmp', 'a..b']) {
      st.write(key, bytes('v'));
      assert.is(text(st.read(key)), 'v', key);
      st.append(key, bytes('w'), 0, 1);
      st.remove(key);
    }
    st.close();
    const bad = ['', '.', '..', '.hidden', 'a/b', '../x', '/abs', 'a\\b', 'x.tmp', 'journal.tmp', 'x'.repeat(129), 'x'.repeat(200), 'sp ace', 'nul\0', 'é', '-x', '_x'];
    for (const key of bad) {
      for (const [what, op] of [
        ['read', () => st.read(key)],
        ['write', () => st.write(key, bytes('v'))],
        ['append', () => st.append(key, bytes('v'), 0, 1)],
        ['remove', () => st.remove(key)],
      ] as [string, () => unknown][]) {
        const f = failure(op);
        assert.is(f.code, 'HF_ERR_OPTION', `${what} ${JSON.stringify(key)}`);
        assert.ok(f.message.includes(JSON.stringify(key)), `${f.message} shows the key`);
      }
    }
    assert.equal(fs.readdirSync(dir), [], 'nothing was written for a bad key');
    assert.equal(fs.readdirSync(tmp), ['s'], 'nothing outside the directory either');
  }),
);

test(
  'the directory is created (with its parents) with mode 0700; an existing one is used as it is',
  inTemp((tmp) => {
    const dir = path.join(tmp, 'a', 'b', 'store');
    const st = new FileStorage(dir);
    assert.is(st.dir, dir);
    assert.ok(fs.statSync(dir).isDirectory());
    assert.is(fs.statSync(dir).mode & 0o777, 0o700);
    const rel = path.relative(process.cwd(), path.join(tmp, 'rel'));
    assert.is(new FileStorage(rel).dir, path.join(tmp, 'rel'), 'dir is made absolute');
    fs.mkdirSync(path.join(tmp, 'existing'), { mode: 0o755 });
    fs.chmodSync(path.join(tmp, 'existing'), 0o755);
    new FileStorage(path.join(tmp, 'existing')).write('k', bytes('v'));
    assert.is(fs.statSync(path.join(tmp, 'existing')).mode & 0o777, 0o755);
  }),
);

test(
  'an unusable directory or key path is HF_ERR_STORAGE naming the file and the system error',
  inTemp((tmp) => {
    // The directory's parent is a file: the constructor cannot create it.
    fs.writeFileSync(path.join(tmp, 'file'), 'x');
    const f = failure(() => new FileStorage(path.join(tmp, 'file', 'store')));
    assert.is(f.code, 'HF_ERR_STORAGE');
    assert.ok(f.message.includes(path.join(tmp, 'file', 'store')) && f.message.includes('ENOTDIR'), f.message);
    assert.is(failure(() => new FileStorage(path.join(tmp, 'file'))).code, 'HF_ERR_STORAGE', 'the directory is a file');

    // The directory is replaced by a file after the storage was made: every call fails with STORAGE.
    const dir = path.join(tmp, 'gone');
    const st = new FileStorage(dir);
    st.append('j', bytes('a'), 0, 1);
    st.close();
    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, 'now a file');
    for (const [what, op] of [
      ['read', () => st.read('j')],
      ['write', () => st.write('j', bytes('v'))],
      ['append', () => st.append('j', bytes('v'), 0, 1)],
      ['remove', () => st.remove('j')],
    ] as [string, () => unknown][]) {
      const e = failure(op);
      assert.is(e.code, 'HF_ERR_STORAGE', what);
      assert.ok(e.message.includes(dir) && e.message.includes('ENOTDIR'), `${what}: ${e.message}`);
    }

    // A key whose path is a directory.
    const d2 = path.join(tmp, 'd2');
    const s2 = new FileStorage(d2);
    fs.mkdirSync(path.join(d2, 'k'));
    assert.is(failure(() => s2.read('k')).code, 'HF_ERR_STORAGE');
    assert.is(failure(() => s2.write('k', bytes('v'))).code, 'HF_ERR_STORAGE');
    assert.is(failure(() => s2.append('k', bytes('v'), 0, 1)).code, 'HF_ERR_STORAGE');
    assert.is(failure(() => s2.remove('k')).code, 'HF_ERR_STORAGE');
    // Other keys are unaffected.
    s2.write('ok', bytes('v'));
    assert.is(text(s2.read('ok')), 'v');
    s2.close();
  }),
);

test(
  'close(): appends reopen on demand; close twice is fine; syncAppends writes the same bytes',
  inTemp((tmp) => {
    const dir = path.join(tmp, 's');
    const st = new FileStorage(dir);
    st.append('j', bytes('a'), 0, 1);
    assert.is(openUnder(dir).length, 1, 'one descriptor kept for appends');
    st.append('j', bytes('b'), 0, 1);
    assert.is(openUnder(dir).length, 1, 'and reused');
    st.close();
    assert.equal(openUnder(dir), []);
    st.close();
    st.append('j', bytes('c'), 0, 1);
    assert.is(text(st.read('j')), 'abc');
    st.close();
    const synced = new FileStorage(dir, { syncAppends: true });
    synced.append('j', bytes('xdx'), 1, 1);
    assert.is(text(synced.read('j')), 'abcd');
    synced.close();
    assert.equal(openUnder(dir), []);
  }),
);

test(
  'a journal in FileStorage keeps every record appended before a SIGKILL, and goes on after it',
  inTemp(async (tmp) => {
    let child: ChildProcess | null = null;
    try {
      await within(30_000, 'two writer processes killed mid-stream', async () => {
        const dir = path.join(tmp, 'store');
        let expected = 0; // records in the journal so far
        for (const [round, after] of [
          [1, 300],
          [2, 2000],
        ]) {
          const proc = spawn(process.execPath, ['-r', 'tsx/cjs', WRITER, dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
          child = proc;
          let out = '';
          let err = '';
          let start = -1;
          let last = -1;
          let killed = false;
          proc.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
          const closed = new Promise<void>((resolve) => proc.on('close', () => resolve()));
          proc.stdout.setEncoding('utf8').on('data', (s: string) => {
            out += s;
            const lines = out.split('\n');
            out = lines.pop()!;
            for (const line of lines) {
              if (line.startsWith('start ')) start = Number(line.slice(6));
              else if (line === 'timeout') err += ' (the writer ran out of time)';
              else last = Number(line);
            }
            if (!killed && start >= 0 && last >= start + after) {
              killed = true;
              proc.kill('SIGKILL');
            }
          });
          await closed; // after 'close' every line the writer printed has been read
          assert.ok(killed && !err.includes('ran out of time'), `round ${round}: the writer ended by itself (${err})`);
          assert.is(proc.signalCode, 'SIGKILL');
          assert.is(start, expected, `round ${round}: the writer continued the journal it found`);
          // `last` counts the appends whose line was printed; the kill may have come after one more
          // append returned but before its line was written.
          const c = Journal.load(new FileStorage(dir));
          assert.ok(c !== null);
          assert.equal([...c!.checkpoint], [0xc0, 0xde]);
          assert.is(c!.torn, 0, 'SIGKILL does not tear a write');
          const n = c!.records.length;
          assert.ok(n === last || n === last + 1, `round ${round}: ${n} records loaded, ${last} appends returned`);
          for (let i = 0; i < n; i++) {
            const [type, body] = c!.records[i];
            assert.is(type, Rec.MESSAGE);
            assert.is(body.length, 4 + (i % 40), `record ${i}`);
            assert.is(getU32(body, 0), i, `record ${i}`);
            assert.ok(
              body.subarray(4).every((b) => b === (i & 0xff)),
              `record ${i} body`,
            );
          }
          expected = n;
        }
        assert.ok(expected >= 2300);
      });
    } finally {
      // Whatever happened (a failed check, the time limit), the writer does not outlive the test.
      const c = child as ChildProcess | null;
      if (c !== null && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  }),
);

test(
  'the directory removed under it: write makes it again (and says so), append notices its file is gone and throws',
  inTemp(async (tmp) => {
    const dir = path.join(tmp, 'state');
    const made: string[] = [];
    const s = new FileStorage(dir, { onRecreated: (d) => made.push(d) });
    s.write('journal', bytes('checkpoint'));
    s.append('journal', bytes('-a'), 0, 2);
    fs.rmSync(dir, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, REMOVED_CHECK_MS + 20));
    const f = failure(() => s.append('journal', bytes('-b'), 0, 2));
    assert.is(f.code, 'HF_ERR_STORAGE');
    assert.match(f.message, /append to .*state\/journal: the file was removed/);
    assert.equal(made, [], 'an append does not make the directory again');
    s.write('journal', bytes('whole'));
    assert.equal(made, [dir]);
    s.append('journal', bytes('-c'), 0, 2);
    assert.is(text(s.read('journal')), 'whole-c');
    s.close();
  }),
);

test(
  'a state path that is a file, or under one: HF_ERR_STORAGE naming it',
  inTemp((tmp) => {
    fs.writeFileSync(path.join(tmp, 'file'), '');
    assert.match(failure(() => new FileStorage(path.join(tmp, 'file'))).message, /^directory .*file is not a directory: EEXIST$/);
    assert.match(failure(() => new FileStorage(path.join(tmp, 'file', 'x'))).message, /^directory .*file\/x cannot be created: ENOTDIR$/);
  }),
);

test.run();
