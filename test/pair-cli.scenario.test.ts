/**
 * `holdfast gateway` as one of a primary/standby pair, against the real CLI (`bin/holdfast`): the
 * pair flags' mistakes end with one line `holdfast gateway: HF_ERR_OPTION: ...` naming the flag and
 * status 2; and two gateways started with --peer-listen and --standby-of (the key from
 * HOLDFAST_PAIR_KEY) pair up: the standby attaches, holds the device's session, and takes it over
 * when the primary is killed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, devicesFile, freePort, holdfast, tmpDir } from './support/host';
import { within } from './support/within';

const KEY = 'k-pair-cli';
const PAIR_KEY = 'pair-cli-shared-secret';
/** The environment of every run here: no pair key but the one a case gives. */
const NO_KEY = { HOLDFAST_PAIR_KEY: undefined };

const gw = (dir: string, ...more: string[]): string[] => ['gateway', '--log-level', 'warn', '--http', '127.0.0.1:0', '--devices', devicesFile(dir, { 'pi-1': KEY }), ...more];
const write = (dir: string, name: string, text: string, mode: number): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode);
  return f;
};

interface Case {
  name: string;
  args: (dir: string) => string[];
  env?: Record<string, string>;
  /** The whole stderr line, after `holdfast gateway: HF_ERR_OPTION: ` (or `holdfast device: ...`). */
  line: RegExp;
}

const CASES: Case[] = [
  {
    name: '--peer-listen without a key',
    args: (d) => gw(d, '--peer-listen', '127.0.0.1:0'),
    line: /^holdfast gateway: HF_ERR_OPTION: --peer-listen needs the pair's key: --pair-key, --pair-key-file or HOLDFAST_PAIR_KEY$/,
  },
  {
    name: '--standby-of without a key',
    args: (d) => gw(d, '--standby-of', '127.0.0.1:9'),
    line: /^holdfast gateway: HF_ERR_OPTION: --standby-of needs the pair's key: --pair-key, --pair-key-file or HOLDFAST_PAIR_KEY$/,
  },
  {
    name: '--pair-key under 16 bytes',
    args: (d) => gw(d, '--peer-listen', '127.0.0.1:0', '--pair-key', 'short'),
    line: /^holdfast gateway: HF_ERR_OPTION: --pair-key: the pair's key must be at least 16 bytes, got 5$/,
  },
  {
    name: 'HOLDFAST_PAIR_KEY under 16 bytes',
    args: (d) => gw(d, '--peer-listen', '127.0.0.1:0'),
    env: { HOLDFAST_PAIR_KEY: '15-bytes-secret' },
    line: /^holdfast gateway: HF_ERR_OPTION: HOLDFAST_PAIR_KEY: the pair's key must be at least 16 bytes, got 15$/,
  },
  {
    name: '--pair-key-file readable by everyone (0644)',
    args: (d) => gw(d, '--peer-listen', '127.0.0.1:0', '--pair-key-file', write(d, 'pair.key', `${PAIR_KEY}\n`, 0o644)),
    line: /^holdfast gateway: HF_ERR_OPTION: --pair-key-file \S*pair\.key: mode 0644, group or others may read it \(bits 0044\); fix: chmod 600 \S*pair\.key \(or give --insecure-key-file\)$/,
  },
  {
    name: '--pair-key-file missing',
    args: (d) => gw(d, '--peer-listen', '127.0.0.1:0', '--pair-key-file', path.join(d, 'none.key')),
    line: /^holdfast gateway: HF_ERR_OPTION: --pair-key-file \S*none\.key: ENOENT$/,
  },
  {
    name: '--standby-of not an address',
    args: (d) => gw(d, '--standby-of', 'primary', '--pair-key', PAIR_KEY),
    line: /^holdfast gateway: HF_ERR_OPTION: --standby-of must be "host:port", got "primary"$/,
  },
  {
    name: '--standby-of port 0',
    args: (d) => gw(d, '--standby-of', '127.0.0.1:0', '--pair-key', PAIR_KEY),
    line: /^holdfast gateway: HF_ERR_OPTION: --standby-of must be "host:port" with a port 1\.\.65535, got "127\.0\.0\.1:0"$/,
  },
  {
    name: '--peer-listen port out of range',
    args: (d) => gw(d, '--peer-listen', '127.0.0.1:70000', '--pair-key', PAIR_KEY),
    line: /^holdfast gateway: HF_ERR_OPTION: --peer-listen must be "host:port" with a port 0\.\.65535, got "127\.0\.0\.1:70000"$/,
  },
  {
    name: 'a pair key without --peer-listen or --standby-of',
    args: (d) => gw(d, '--pair-key', PAIR_KEY),
    line: /^holdfast gateway: HF_ERR_OPTION: --pair-key needs --peer-listen HOST:PORT or --standby-of HOST:PORT \(or both\)$/,
  },
  {
    name: '--heartbeat-ms 0',
    args: (d) => gw(d, '--peer-listen', '127.0.0.1:0', '--pair-key', PAIR_KEY, '--heartbeat-ms', '0'),
    line: /^holdfast gateway: HF_ERR_OPTION: --heartbeat-ms must be an integer 1\.\.60000, got 0$/,
  },
  {
    name: '--peer-ca without TLS',
    args: (d) => gw(d, '--standby-of', '127.0.0.1:9', '--pair-key', PAIR_KEY, '--peer-ca', write(d, 'ca.pem', 'x', 0o644)),
    line: /^holdfast gateway: HF_ERR_OPTION: --peer-ca needs --tls-cert and --tls-key \(the pair's connection is TLS only when the gateway's listeners are\)$/,
  },
  {
    name: '--ack-after standby without a pair',
    args: (d) => gw(d, '--ack-after', 'standby'),
    line: /^holdfast gateway: HF_ERR_OPTION: --ack-after standby needs a pair \(--peer-listen HOST:PORT or --standby-of HOST:PORT, and its key\) or a cluster \(--cluster nats:\/\/HOST:PORT\)$/,
  },
  {
    name: 'a pair with --workers',
    args: (d) => gw(d, '--workers', '2', '--peer-listen', '127.0.0.1:0', '--pair-key', PAIR_KEY),
    line: /^holdfast gateway: HF_ERR_OPTION: --peer-listen does not work with --workers 2 yet \(.*a pair replicates one process; a cluster node is one process\): use --workers 1$/,
  },
  {
    name: '--standby-of with --workers',
    args: (d) => gw(d, '--workers', '2', '--standby-of', '127.0.0.1:9'),
    line: /^holdfast gateway: HF_ERR_OPTION: --standby-of does not work with --workers 2 yet \(.*\): use --workers 1$/,
  },
  {
    name: "device --ack-after standby (a gateway's)",
    args: () => ['device', '--gateway', 'http://127.0.0.1:9', '--no-tcp', '--id', 'pi-1', '--key', KEY, '--ack-after', 'standby'],
    line: /^holdfast device: HF_ERR_OPTION: --ack-after 'standby' is a gateway's \(the primary of a pair\): a device acknowledges 'received' or 'app'$/,
  },
  {
    name: 'device --ack-after bogus: lists only what a device takes',
    args: () => ['device', '--gateway', 'http://127.0.0.1:9', '--no-tcp', '--id', 'pi-1', '--key', KEY, '--ack-after', 'later'],
    line: /^holdfast device: HF_ERR_OPTION: --ack-after must be 'received' or 'app', got "later"$/,
  },
];

for (const k of CASES) {
  test(`one line and status 2: ${k.name}`, async () => {
    const c = new Cleanup();
    try {
      const p = holdfast(k.args(tmpDir(c)), c, { ...NO_KEY, ...k.env });
      const status = await within(20_000, k.name, () => p.exited);
      const lines = p.log.split('\n').filter((l) => l.length > 0);
      assert.is(lines.length, 1, `exactly one line, got:\n${p.log}`);
      assert.match(lines[0], k.line);
      assert.is(status, 2, `exit status (log: ${p.log})`);
    } finally {
      await c.run();
    }
  });
}

test('a pair from the CLI: the standby attaches, holds the session, and takes over when the primary is killed', async () => {
  const c = new Cleanup();
  try {
    await within(45_000, 'pair run', async () => {
      const dir = tmpDir(c);
      const env = { HOLDFAST_PAIR_KEY: PAIR_KEY };
      const common = ['gateway', '--devices', devicesFile(dir, { 'pi-1': KEY }), '--ack-after', 'standby', '--heartbeat-ms', '50'];
      const httpA = await freePort();
      const a = holdfast([...common, '--http', `127.0.0.1:${httpA}`, '--peer-listen', '127.0.0.1:0', '--node', 'gw-a'], c, env);
      const peer = (await a.waitFor(/gateway: pair\s+role=primary epoch=1 listen=(127\.0\.0\.1:\d+)/))[1];
      const b = holdfast([...common, '--http', '127.0.0.1:0', '--standby-of', peer, '--peer-listen', '127.0.0.1:0', '--node', 'gw-b'], c, env);
      await b.waitFor(/gateway: pair\s+role=standby epoch=0 peer=127\.0\.0\.1:\d+ listen=127\.0\.0\.1:\d+/, 15_000, 0);
      await b.waitFor(/gateway: attached to primary\s+role=standby epoch=1 peer=127\.0\.0\.1:\d+ node=gw-a/, 15_000, 0);
      await a.waitFor(/gateway: standby attached\s.*node=gw-b /, 15_000, 0);
      // ackAfter 'standby': the device's session opens only once the standby holds it.
      const dev = holdfast(['device', '--gateway', `http://127.0.0.1:${httpA}`, '--no-tcp', '--id', 'pi-1', '--key', KEY], c);
      await dev.waitFor(/device: session open/, 15_000, 0);
      a.kill('SIGKILL');
      await within(5000, 'primary gone', () => a.exited);
      await b.waitFor(/warn\s+gateway: took over from the primary\s.*epoch=2 .*sessions=1 /, 10_000, 0);
      dev.kill('SIGTERM');
      assert.is(await within(10_000, 'device stops', () => dev.exited), 0);
      b.kill('SIGTERM');
      assert.is(await within(10_000, 'standby stops', () => b.exited), 0);
      assert.not.match(b.log, /HF_ERR_OPTION/);
    });
  } finally {
    await c.run();
  }
});

test.run();
