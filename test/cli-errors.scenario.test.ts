/**
 * Failures a person can cause from the command line or the environment, against the real CLI
 * (`bin/holdfast`): each ends with exactly one line on stderr, `holdfast <cmd>: HF_ERR_...: ...`
 * naming the offending value, the documented exit status (2: a bad flag, setting or file given;
 * 1: a failure at run time) and no stack trace. And the one the device survives: its --state
 * directory removed under a running stream (a warning, a full checkpoint, the stream intact).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cleanup, devicesFile, freePort, hashServer, holdfast, type Proc, randomData, sha256, tmpDir } from './support/host';
import { sleep, within } from './support/within';
import { failureLine } from '../tools/cli/run';

const KEY = 'k-cli-errors';

/** A TCP listener on 127.0.0.1 holding a port (closed by the cleanup). */
async function occupy(c: Cleanup): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  c.add(() => new Promise((r) => s.close(r)));
  return (s.address() as net.AddressInfo).port;
}

interface Case {
  name: string;
  /** Builds the command line in `dir` (files, occupied ports). */
  args: (dir: string, c: Cleanup) => Promise<string[]>;
  status: number;
  /** The whole stderr line, after `holdfast <cmd>: `. */
  line: RegExp;
}

const gw = (dir: string, ...more: string[]): string[] => ['gateway', '--log-level', 'warn', '--devices', devicesFile(dir, { 'pi-1': KEY }), ...more];
const dev = (...more: string[]): string[] => ['device', '--log-level', 'warn', '--gateway', 'http://127.0.0.1:9', '--no-tcp', '--id', 'pi-1', '--key', KEY, ...more];
/** Writes `name` in `dir`, private to its owner (mode 0600, as files of keys must be); `mode` another. */
const write = (dir: string, name: string, text: string, mode = 0o600): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode);
  return f;
};
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const CASES: Case[] = [
  // gateway
  { name: 'gateway --devices missing', args: async (d) => ['gateway', '--devices', path.join(d, 'none.json')], status: 2, line: /^holdfast gateway: HF_ERR_OPTION: --devices \S*none\.json: ENOENT$/ },
  {
    name: 'gateway --devices not JSON',
    args: async (d) => ['gateway', '--devices', write(d, 'bad.json', 'pi-1 = s3cret\n{\n')],
    status: 2,
    line: /^holdfast gateway: HF_ERR_OPTION: --devices \S*bad\.json: not JSON \(.+\)$/,
  },
  {
    name: 'gateway --devices wrong shape',
    args: async (d) => ['gateway', '--devices', write(d, 'arr.json', '["pi-1"]')],
    status: 2,
    line: /^holdfast gateway: HF_ERR_OPTION: --devices \S*arr\.json: must be a JSON object/,
  },
  {
    name: 'gateway --devices key not a string',
    args: async (d) => ['gateway', '--devices', write(d, 'num.json', '{"pi-1": 7}')],
    status: 2,
    line: /^holdfast gateway: HF_ERR_OPTION: --devices \S*num\.json: the key of "pi-1" must be a non-empty string, or \{"key": \.\.\., "labels": \{\.\.\.\}\}$/,
  },
  {
    name: 'gateway --devices readable by everyone (0644)',
    args: async (d) => ['gateway', '--devices', write(d, 'devices.json', '{"pi-1": "s3cret"}', 0o644)],
    status: 2,
    line: /^holdfast gateway: HF_ERR_OPTION: --devices \S*devices\.json: mode 0644, group or others may read it \(bits 0044\); fix: chmod 600 \S*devices\.json \(or give --insecure-key-file\)$/,
  },
  {
    name: 'gateway --tls-key readable by group (0640)',
    args: async (d) => gw(d, '--tls-cert', write(d, 'cert.pem', 'x'), '--tls-key', write(d, 'key.pem', 'x', 0o640)),
    status: 2,
    line: /^holdfast gateway: HF_ERR_OPTION: --tls-key \S*key\.pem: mode 0640, group or others may read it \(bits 0040\); fix: chmod 600 \S*key\.pem/,
  },
  {
    name: 'gateway --http port in use',
    args: async (d, c) => gw(d, '--http', `127.0.0.1:${await occupy(c)}`),
    status: 1,
    line: /^holdfast gateway: HF_ERR_CONNECT: http listen on 127\.0\.0\.1:(\d+): EADDRINUSE$/,
  },
  {
    name: 'gateway --tcp port in use',
    args: async (d, c) => gw(d, '--http', `127.0.0.1:${await freePort()}`, '--tcp', `127.0.0.1:${await occupy(c)}`),
    status: 1,
    line: /^holdfast gateway: HF_ERR_CONNECT: tcp listen on 127\.0\.0\.1:(\d+): EADDRINUSE$/,
  },
  { name: 'gateway --tcp not an address', args: async (d) => gw(d, '--tcp', 'gw-tcp'), status: 2, line: /^holdfast gateway: HF_ERR_OPTION: tcp must be "host:port", got "gw-tcp"$/ },
  { name: 'gateway --http port out of range', args: async (d) => gw(d, '--http', '127.0.0.1:70000'), status: 2, line: /^holdfast gateway: HF_ERR_OPTION: http must be .*"127\.0\.0\.1:70000"$/ },
  { name: 'gateway unknown flag', args: async (d) => gw(d, '--colour'), status: 2, line: /^holdfast gateway: HF_ERR_OPTION: unknown flag --colour$/ },
  {
    name: 'gateway --ack-after downstream (not built yet)',
    args: async (d) => gw(d, '--ack-after', 'downstream'),
    status: 2,
    line: /^holdfast gateway: HF_ERR_OPTION: --ack-after 'downstream' is not built yet: use 'received', 'app' or 'standby'$/,
  },
  {
    name: 'gateway --ack-after bogus',
    args: async (d) => gw(d, '--ack-after', 'later'),
    status: 2,
    line: /^holdfast gateway: HF_ERR_OPTION: --ack-after must be 'received', 'app' or 'standby', got "later"$/,
  },
  // device
  {
    name: 'device --forward port in use',
    args: async (_d, c) => dev('--forward', `${await occupy(c)}:127.0.0.1:5432`),
    status: 1,
    line: /^holdfast device: HF_ERR_CONNECT: forward listen on 127\.0\.0\.1:(\d+) \(to 127\.0\.0\.1:5432\): EADDRINUSE$/,
  },
  {
    name: 'device --ack-after downstream (not built yet)',
    args: async () => dev('--ack-after', 'downstream'),
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --ack-after 'downstream' is not built yet: use 'received' or 'app'$/,
  },
  {
    name: "device --ack-after standby (a gateway's)",
    args: async () => dev('--ack-after', 'standby'),
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --ack-after 'standby' is a gateway's \(the primary of a pair\): a device acknowledges 'received' or 'app'$/,
  },
  { name: 'device --forward malformed', args: async () => dev('--forward', '5432'), status: 2, line: /^holdfast device: HF_ERR_OPTION: --forward must be LOCALPORT:HOST:PORT, got "5432"$/ },
  {
    name: 'device --state a regular file',
    args: async (d) => dev('--state', write(d, 'state', '')),
    status: 1,
    line: /^holdfast device: HF_ERR_STORAGE: directory \S*state is not a directory: EEXIST$/,
  },
  {
    name: 'device --state under a regular file',
    args: async (d) => dev('--state', path.join(write(d, 'file', ''), 'state')),
    status: 1,
    line: /^holdfast device: HF_ERR_STORAGE: directory \S*file\/state cannot be created: ENOTDIR$/,
  },
  {
    name: 'device --state on a full disk',
    args: async (d) => {
      const s = path.join(d, 'full');
      fs.mkdirSync(s);
      fs.symlinkSync('/dev/full', path.join(s, 'journal.tmp')); // every write there: ENOSPC
      return dev('--state', s);
    },
    status: 1,
    line: /^holdfast device: HF_ERR_STORAGE: write \S*full\/journal\.tmp: ENOSPC$/,
  },
  {
    name: 'device --state holding a journal that is not one',
    args: async (d) => {
      const s = path.join(d, 'torn');
      fs.mkdirSync(s);
      fs.writeFileSync(path.join(s, 'journal'), 'garbage\n');
      return dev('--state', s);
    },
    status: 1,
    line: /^holdfast device: HF_ERR_STATE: state directory \S*torn: journal journal does not start with a checkpoint \(8 bytes\)$/,
  },
  { name: 'device --config missing', args: async (d) => dev('--config', path.join(d, 'none.json')), status: 2, line: /^holdfast device: HF_ERR_OPTION: --config \S*none\.json: ENOENT$/ },
  {
    name: 'device --config not JSON',
    args: async (d) => dev('--config', write(d, 'c.json', '{"id": "pi-1",\n')),
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --config \S*c\.json: not JSON \(.+\)$/,
  },
  {
    name: 'device --config wrong shape',
    args: async (d) => dev('--config', write(d, 'c.json', '[]')),
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --config \S*c\.json: must be a JSON object$/,
  },
  {
    name: 'device --config unknown setting',
    args: async (d) => dev('--config', write(d, 'c.json', '{"gatway": "http://x"}')),
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --config \S*c\.json: unknown setting "gatway"$/,
  },
  {
    name: 'device --config wrong type',
    args: async (d) => dev('--config', write(d, 'c.json', '{"forward": 5}')),
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --config \S*c\.json: forward must be a string or a list of strings$/,
  },
  {
    name: 'device --tcp not one per --gateway',
    args: async () => ['device', '--gateway', 'http://127.0.0.1:9', '--gateway', 'http://127.0.0.1:10', '--tcp', '127.0.0.1:11', '--id', 'pi-1', '--key', KEY],
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --tcp: one per --gateway, in the same order \(2 gateway\(s\), 1 tcp address\(es\)\)$/,
  },
  {
    name: 'device --key-file readable by group (0640)',
    args: async (d) => ['device', '--gateway', 'http://127.0.0.1:9', '--no-tcp', '--id', 'pi-1', '--key-file', write(d, 'pi-1.key', `${KEY}\n`, 0o640)],
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: --key-file \S*pi-1\.key: mode 0640, group or others may read it \(bits 0040\); fix: chmod 600 \S*pi-1\.key \(or give --insecure-key-file\)$/,
  },
  {
    name: 'flash --key-file readable by everyone (0604)',
    args: async (d) => ['flash', '--host', 'pi@127.0.0.1', '--gateway', 'http://127.0.0.1:9', '--id', 'pi-1', '--key-file', write(d, 'pi-1.key', `${KEY}\n`, 0o604)],
    status: 2,
    line: /^holdfast flash: HF_ERR_OPTION: --key-file \S*pi-1\.key: mode 0604, group or others may read it \(bits 0004\); fix: chmod 600/,
  },
  {
    name: 'device --tcp not an address',
    args: async () => ['device', '--gateway', 'http://127.0.0.1:9', '--tcp', 'gw', '--id', 'pi-1', '--key', KEY],
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: tcp must be "host:port", got "gw"$/,
  },
  {
    name: 'device --gateway not a URL',
    args: async () => ['device', '--gateway', 'gw.example', '--id', 'pi-1', '--key', KEY],
    status: 2,
    line: /^holdfast device: HF_ERR_OPTION: gateway must be a URL.*"gw\.example"$/,
  },
];

/** Runs the CLI to its end (bounded) and returns its exit status and stderr. */
async function runToEnd(args: string[], c: Cleanup): Promise<{ status: number | null; stderr: string }> {
  const p = holdfast(args, c);
  const status = await within(20_000, `holdfast ${args.join(' ')}`, () => p.exited);
  return { status, stderr: p.log };
}

for (const k of CASES) {
  test(`one line and status ${k.status}: ${k.name}`, async () => {
    const c = new Cleanup();
    try {
      const dir = tmpDir(c);
      const args = await k.args(dir, c);
      const { status, stderr } = await runToEnd(args, c);
      const lines = stderr.split('\n').filter((l) => l.length > 0);
      assert.is(lines.length, 1, `exactly one line on stderr, got:\n${stderr}`);
      assert.match(lines[0], k.line);
      assert.not.match(stderr, /^\s+at /m, 'no stack trace');
      // The offending value is on the line: a port the case occupied, or a path it made.
      const port = k.line.exec(lines[0])?.[1];
      if (port !== undefined)
        assert.ok(
          args.some((a) => a.includes(port)),
          `port ${port} is one the command was given`,
        );
      assert.is(status, k.status, `exit status (stderr: ${stderr})`);
    } finally {
      await c.run();
    }
  });
}

test('--insecure-key-file: a key file and a devices file others can read are taken, with a warning at start', async () => {
  const c = new Cleanup();
  try {
    const dir = tmpDir(c);
    const devices = write(dir, 'devices.json', JSON.stringify({ 'pi-1': KEY }), 0o644);
    const gwp = holdfast(['gateway', '--http', '127.0.0.1:0', '--devices', devices, '--insecure-key-file'], c);
    const m = await gwp.waitFor(/listening.*http:\/\/127\.0\.0\.1:(\d+)\/v1\/link/);
    await gwp.waitFor(/gateway: ready/, 10_000, 0);
    assert.match(gwp.log, /--devices \S*devices\.json: mode 0644, group or others may read it \(bits 0044\); fix: chmod 600 \S*devices\.json \(taken: --insecure-key-file\)/);
    const keyFile = write(dir, 'pi-1.key', `${KEY}\n`, 0o640);
    const dev = holdfast(['device', '--gateway', `http://127.0.0.1:${m[1]}`, '--no-tcp', '--id', 'pi-1', '--key-file', keyFile, '--insecure-key-file'], c);
    await dev.waitFor(/session open/, 10_000, 0);
    assert.match(dev.log, /--key-file \S*pi-1\.key: mode 0640, group or others may read it \(bits 0040\); fix: chmod 600 \S*pi-1\.key \(taken: --insecure-key-file\)/);
    dev.kill('SIGTERM');
    assert.is(await within(10_000, 'device stops', () => dev.exited), 0);
    gwp.kill('SIGTERM');
    assert.is(await within(10_000, 'gateway stops', () => gwp.exited), 0);
  } finally {
    await c.run();
  }
});

test('an error without a code: one line, status 70; the stack only with HOLDFAST_DEBUG=1', async () => {
  const c = new Cleanup();
  try {
    // A --status path that is a directory makes no error (a warning); an internal error needs a bug, so
    // the check runs the line builder of run.ts itself.
    const plain = failureLine('holdfast', 'device', new TypeError('x is not a function'), false);
    assert.is(plain.status, 70);
    assert.match(plain.line, /^holdfast device: internal error: TypeError: x is not a function \(a bug of holdfast; --debug or HOLDFAST_DEBUG=1 shows the stack\)\n$/);
    const debug = failureLine('holdfast', 'device', new TypeError('x is not a function'), true);
    assert.match(debug.line, /\n\s+at /, 'the stack under --debug');
    const multi = failureLine('holdfast', 'gateway', Object.assign(new Error('a\nb'), {}), false);
    assert.is(multi.line.split('\n').length, 2, 'one line, whatever the message holds');
  } finally {
    await c.run();
  }
});

/** Writes `total` bytes to 127.0.0.1:port in `step`-byte pieces every `everyMs`, half-closes, resolves with the answer. */
function pacedPush(port: number, data: Buffer, step: number, everyMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let answer = '';
    s.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    s.on('end', () => resolve(answer));
    s.on('error', reject);
    let at = 0;
    const t = setInterval(() => {
      s.write(data.subarray(at, at + step));
      at += step;
      if (at >= data.length) {
        clearInterval(t);
        s.end();
      }
    }, everyMs);
  });
}

async function streamSetup(c: Cleanup): Promise<{ dir: string; state: string; sink: Awaited<ReturnType<typeof hashServer>>; gateway: Proc; device: () => Promise<{ p: Proc; port: number }> }> {
  const dir = tmpDir(c);
  const state = path.join(dir, 'state');
  const sink = await hashServer(c);
  const http = await freePort();
  const gateway = holdfast(['gateway', '--http', `127.0.0.1:${http}`, '--devices', devicesFile(dir, { 'pi-1': KEY }), '--allow', `127.0.0.1:${sink.port}`], c);
  await gateway.waitFor(/gateway: ready/);
  const device = async (): Promise<{ p: Proc; port: number }> => {
    const port = await freePort();
    const p = holdfast(['device', '--gateway', `http://127.0.0.1:${http}`, '--no-tcp', '--id', 'pi-1', '--key', KEY, '--state', state, '--forward', `${port}:127.0.0.1:${sink.port}`], c);
    await p.waitFor(/device: session (open|resumed)/);
    return { p, port };
  };
  return { dir, state, sink, gateway, device };
}

test('--state removed mid-stream: a warning, a full checkpoint in the directory made again, the stream intact, the session resumable', async () => {
  const c = new Cleanup();
  try {
    await within(60_000, 'state removed', async () => {
      const { state, device } = await streamSetup(c);
      const { p, port } = await device();
      // About 1 s of stream, under the journal's compaction size (1 MiB): the removal is found by an
      // append (its file was removed), not by a checkpoint's write.
      const data = randomData(768 << 10);
      const answer = pacedPush(port, data, 16 << 10, 20);
      await sleep(300);
      fs.rmSync(state, { recursive: true, force: true });
      assert.is(await answer, sha256(data), 'every byte once, in order, through the removal');
      await p.waitFor(/warn\s+device: state directory failed; writing a full checkpoint from memory .*the file was removed/, 5000, 0);
      await p.waitFor(/warn\s+device: state directory was gone; made it again with a full checkpoint/, 5000, 0);
      await p.waitFor(/warn\s+device: state directory restored: the session is durable again/, 5000, 0);
      assert.ok(fs.statSync(path.join(state, 'journal')).size > 0, 'a journal in the directory made again');
      assert.is(p.child.exitCode, null, 'the device goes on');
      assert.not.match(p.log, /^\s+at /m, 'no stack trace');
      // The checkpoint is a whole session: kill -9 and a new process resumes it from there.
      p.kill('SIGKILL');
      await p.exited;
      const again = await device();
      assert.match(again.p.log, /resuming session from journal/);
      assert.match(again.p.log, /session resumed/);
      const more = randomData(256 << 10);
      assert.is(await pacedPush(again.port, more, 64 << 10, 5), sha256(more), 'the resumed session carries a stream');
      again.p.kill('SIGTERM');
      await within(10_000, 'device stops', () => again.p.exited);
    });
  } finally {
    await c.run();
  }
});

test('--state removed and replaced by a file (cannot be made again): one line HF_ERR_STORAGE, status 1', async () => {
  const c = new Cleanup();
  try {
    await within(60_000, 'state unrecoverable', async () => {
      const { state, device } = await streamSetup(c);
      const { p, port } = await device();
      const answer = pacedPush(port, randomData(2 << 20), 32 << 10, 10).catch(() => 'cut');
      await sleep(300);
      fs.rmSync(state, { recursive: true, force: true });
      fs.writeFileSync(state, 'not a directory');
      const status = await within(10_000, 'device ends', () => p.exited);
      await answer;
      const last = p.log.trimEnd().split('\n').pop() ?? '';
      assert.match(last, new RegExp(`^holdfast device: HF_ERR_STORAGE: .*${esc(state)}.*(not a directory|ENOTDIR|EEXIST)`));
      assert.is(p.log.split('\n').filter((l) => l.startsWith('holdfast device:')).length, 1, 'one error line');
      assert.not.match(p.log, /^\s+at /m, 'no stack trace');
      assert.is(status, 1);
    });
  } finally {
    await c.run();
  }
});

test.run();
