/**
 * HfError: the code is a field and not part of the message, a wrapped error is kept as `cause`,
 * `toString()` shows both; an error sent to the peer (error bundle) arrives with its code once; the
 * CLI still shows the code; hal/ states its error contract with types of its own.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeControl, type ErrorItem } from '../firmware/control';
import { errorBundle } from '../firmware/error-bundle';
import { ErrorCode, HfError, hfError, isHfError } from '../firmware/errors';
import { BundleReader } from '../firmware/wire';
import { FileStorage } from '../targets/node/storage';
import { runCommand } from '../tools/cli/run';
import { Manual } from './support/manual';

test('message is the text for people, without the code', () => {
  const e = hfError(ErrorCode.OPTION, 'credit must be 1..2^30, got 0');
  assert.is(e.message, 'credit must be 1..2^30, got 0');
  assert.not.ok(e.message.includes('HF_ERR'), e.message);
  assert.ok(e.stack?.startsWith('HfError: credit must be 1..2^30, got 0'), e.stack);
});

test('code is a field; one class, an Error', () => {
  const e = hfError(ErrorCode.STORAGE, 'write /x: ENOSPC');
  assert.is(e.code, 'HF_ERR_STORAGE');
  assert.is(e.name, 'HfError');
  assert.ok(e instanceof HfError && e instanceof Error && isHfError(e));
  assert.ok(new HfError(ErrorCode.LIMIT, 'x') instanceof HfError);
  assert.not.ok(isHfError(Object.assign(new Error('HF_ERR_LIMIT: x'), { code: 'HF_ERR_LIMIT' })), 'a look-alike is not one');
});

test('cause: kept when given, absent when not', () => {
  const inner = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  const e = hfError(ErrorCode.STORAGE, 'write /x: ENOSPC', inner);
  assert.is(e.cause, inner);
  assert.is(new HfError(ErrorCode.STORAGE, 'y', inner).cause, inner);
  const plain = hfError(ErrorCode.STORAGE, 'write /x: ENOSPC');
  assert.is(plain.cause, undefined);
  assert.not.ok('cause' in plain, 'no cause property when nothing was wrapped');
  // Wrapping an HfError keeps it whole, code and all.
  const outer = hfError(ErrorCode.BUNDLE, `control item: ${e.message}`, e);
  assert.is((outer.cause as HfError).code, 'HF_ERR_STORAGE');
  assert.is(outer.message, 'control item: write /x: ENOSPC');
});

test('toString shows the name, the code and the text', () => {
  const e = hfError(ErrorCode.FORBIDDEN, '10.0.0.1:22 is not on the allow list');
  assert.is(e.toString(), 'HfError [HF_ERR_FORBIDDEN]: 10.0.0.1:22 is not on the allow list');
  assert.is(String(e), 'HfError [HF_ERR_FORBIDDEN]: 10.0.0.1:22 is not on the allow list');
  assert.is(`${e}`, 'HfError [HF_ERR_FORBIDDEN]: 10.0.0.1:22 is not on the allow list');
});

test('a storage failure wraps the system error as cause; the message names the file and errno', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hf-errors-'));
  try {
    writeFileSync(join(tmp, 'file'), 'x');
    const dir = join(tmp, 'file', 'store');
    let got: unknown;
    try {
      new FileStorage(dir).write('journal', new Uint8Array([1]));
    } catch (e) {
      got = e;
    }
    assert.ok(isHfError(got), String(got));
    const e = got as HfError;
    assert.is(e.code, 'HF_ERR_STORAGE');
    assert.ok(e.message.includes(dir) && e.message.includes('ENOTDIR') && !e.message.includes('HF_ERR'), e.message);
    assert.is((e.cause as NodeJS.ErrnoException).code, 'ENOTDIR');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

/** The error item of an error bundle. */
function errorItem(body: Uint8Array): ErrorItem {
  const v = new BundleReader().read(body);
  assert.is(v.ctlCount, 1);
  return decodeControl(v.buf, v.ctlStarts[0], v.ctlEnds[0]) as ErrorItem;
}

test('error bundle: code and message travel apart, the code once', () => {
  const item = errorItem(errorBundle(7, hfError(ErrorCode.BUSY, 'no room for session 2001 of 2000')));
  assert.is(item.code, 'HF_ERR_BUSY');
  assert.is(item.message, 'no room for session 2001 of 2000');
});

test('a refusal reaches the device with its code as a field and the text once, without the code', () => {
  const m = new Manual({}, {}, { device: new Uint8Array(32).fill(1), gateway: new Uint8Array(32).fill(2) });
  m.client.start(m.now);
  m.deliverRequest();
  const sent = errorItem(m.answers[0].body);
  assert.is(sent.code, 'HF_ERR_AUTH');
  assert.not.ok(sent.message.includes('HF_ERR'), sent.message);
  m.deliverAnswer();
  const e = m.deviceClose as HfError;
  assert.ok(isHfError(e), String(e));
  assert.is(e.code, 'HF_ERR_AUTH');
  assert.is(e.message, `peer: ${sent.message}`);
});

/** The failure a fresh device takes from an error item `{code, message}` answering its hello. */
function peerFailure(code: string, message: string): HfError {
  const m = new Manual();
  m.client.start(m.now);
  const rn = m.requests[0].rn;
  m.client.onBundle(m.now, errorBundle(rn, { code: code as HfError['code'], message }));
  assert.ok(isHfError(m.deviceClose), String(m.deviceClose));
  return m.deviceClose as HfError;
}

test('a peer of an earlier version, code also in the message: taken once', () => {
  const e = peerFailure('HF_ERR_AUTH', 'HF_ERR_AUTH: hello from "dev" refused');
  assert.is(e.code, 'HF_ERR_AUTH');
  assert.is(e.message, 'peer: hello from "dev" refused');
  // Only the item's own code is a prefix to drop; other text stays as sent.
  assert.is(peerFailure('HF_ERR_AUTH', 'HF_ERR_BUSY: x').message, 'peer: HF_ERR_BUSY: x');
});

test('a code this version does not know: HF_ERR_PROTOCOL, the peer code kept in the message', () => {
  const e = peerFailure('HF_ERR_FROM_THE_FUTURE', 'something new');
  assert.is(e.code, 'HF_ERR_PROTOCOL');
  assert.is(e.message, 'peer: "HF_ERR_FROM_THE_FUTURE": something new');
});

test('the CLI prints the code with the text on stderr; HF_ERR_OPTION exits 2, others 1', async () => {
  const lines: string[] = [];
  const write = process.stderr.write;
  const exitCode = process.exitCode;
  (process.stderr as { write: unknown }).write = (s: string) => {
    lines.push(String(s));
    return true;
  };
  try {
    await runCommand(
      'holdfast',
      {
        bad: {
          about: '',
          run: async () => {
            throw hfError(ErrorCode.OPTION, '--port must be 1..65535, got 0');
          },
        },
      },
      ['bad'],
    );
    assert.is(process.exitCode, 2);
    await runCommand(
      'holdfast',
      {
        down: {
          about: '',
          run: async () => {
            throw hfError(ErrorCode.CONNECT, 'gateway 127.0.0.1:1: ECONNREFUSED');
          },
        },
      },
      ['down'],
    );
    assert.is(process.exitCode, 1);
  } finally {
    (process.stderr as { write: unknown }).write = write;
    process.exitCode = exitCode;
  }
  assert.equal(lines, ['holdfast bad: HF_ERR_OPTION: --port must be 1..65535, got 0\n', 'holdfast down: HF_ERR_CONNECT: gateway 127.0.0.1:1: ECONNREFUSED\n']);
});

// ---- hal/ states its contract on its own -----------------------------------------------------------

const halDir = join(__dirname, '..', 'hal');

test('hal/ imports nothing outside hal/ and holds types only', () => {
  const bad: string[] = [];
  for (const f of readdirSync(halDir).filter((n) => n.endsWith('.ts'))) {
    const src = readFileSync(join(halDir, f), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    for (const m of src.matchAll(/(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+)['"]/g)) if (!m[1].startsWith('./')) bad.push(`${f}: imports ${m[1]}`);
    for (const m of src.matchAll(/^(?:export\s+)?(\w+)/gm)) if (!['import', 'export', 'interface', 'type'].includes(m[1])) bad.push(`${f}: ${m[0]}`);
    for (const m of src.matchAll(/^(import|export)\s+(?!type\b|interface\b)(.*)$/gm)) bad.push(`${f}: ${m[0]}`);
  }
  assert.equal(bad, []);
});

test('hal/errors.ts: every HalErrorCode is an ErrorCode (the type check has a runtime twin here)', () => {
  const src = readFileSync(join(halDir, 'errors.ts'), 'utf8');
  const union = /export type HalErrorCode =([^;]+);/.exec(src);
  assert.ok(union, 'HalErrorCode is a union of string literals');
  const codes = [...union[1].matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
  assert.ok(codes.includes('HF_ERR_STORAGE') && codes.includes('HF_ERR_UNSUPPORTED') && codes.includes('HF_ERR_OPTION'), codes.join(' '));
  for (const c of codes) assert.ok((Object.values(ErrorCode) as string[]).includes(c), `${c} is an ErrorCode`);
});

test.run();
