/**
 * The gateway's pair flags as PairOptions (tools/cli/pair-flags.ts): none given is no pair, the key's
 * sources in order, the node's default, the numbers and the CA file passed through.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { advertiseOf, pairOptionsOf } from '../tools/cli/pair-flags';
import { ackAfterFlag, ackAfterOf } from '../tools/cli/common';
import { code, message } from './support/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-pair-flags-'));
const KEY = 'pair-flags-shared-secret';

function file(name: string, text: string, mode: number): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode);
  return f;
}

test('no pair flag: no pair, whatever HOLDFAST_PAIR_KEY holds', () => {
  assert.is(pairOptionsOf({ http: '127.0.0.1:0' }, { HOLDFAST_PAIR_KEY: KEY }), null);
});

test('--pair-key, then --pair-key-file (its first line), then HOLDFAST_PAIR_KEY', () => {
  const f = file('pair.key', 'from-the-pair-key-file\nsecond\n', 0o600);
  const env = { HOLDFAST_PAIR_KEY: 'from-the-environment' };
  assert.is(pairOptionsOf({ 'peer-listen': '127.0.0.1:0', 'pair-key': KEY, 'pair-key-file': f }, env)?.key, KEY);
  assert.is(pairOptionsOf({ 'peer-listen': '127.0.0.1:0', 'pair-key-file': f }, env)?.key, 'from-the-pair-key-file');
  assert.is(pairOptionsOf({ 'peer-listen': '127.0.0.1:0' }, env)?.key, 'from-the-environment');
  assert.is(
    message(() => pairOptionsOf({ 'standby-of': '127.0.0.1:9' }, { HOLDFAST_PAIR_KEY: '' })),
    "--standby-of needs the pair's key: --pair-key, --pair-key-file or HOLDFAST_PAIR_KEY",
  );
});

test('a key file others may read: refused, or taken with a warning under --insecure-key-file', () => {
  const f = file('loose.key', `${KEY}\n`, 0o640);
  assert.is(
    code(() => pairOptionsOf({ 'peer-listen': '127.0.0.1:0', 'pair-key-file': f }, {})),
    'HF_ERR_OPTION',
  );
  const warnings: string[] = [];
  const o = pairOptionsOf({ 'peer-listen': '127.0.0.1:0', 'pair-key-file': f, 'insecure-key-file': true }, {}, (m) => warnings.push(m));
  assert.is(o?.key, KEY);
  assert.equal(warnings, [`--pair-key-file ${f}: mode 0640, group or others may read it (bits 0040); fix: chmod 600 ${f} (taken: --insecure-key-file)`]);
});

test('what the flags give: addresses, node (default: the host name), heartbeats, the CA read', () => {
  const ca = file('ca.pem', 'PEM', 0o644);
  const o = pairOptionsOf({ 'standby-of': '127.0.0.1:7001', 'peer-listen': '127.0.0.1:7002', 'pair-key': KEY, 'heartbeat-ms': 100, 'heartbeat-misses': 6, 'peer-ca': ca, 'tls-cert': 'c.pem' }, {});
  assert.equal(o, { key: KEY, node: os.hostname(), listen: '127.0.0.1:7002', standbyOf: '127.0.0.1:7001', heartbeatMs: 100, heartbeatMisses: 6, ca: Buffer.from('PEM') });
  assert.is(pairOptionsOf({ 'peer-listen': '127.0.0.1:0', 'pair-key': KEY, node: 'gw-a' }, {})?.node, 'gw-a');
  assert.is(
    message(() => pairOptionsOf({ 'peer-listen': '127.0.0.1:0', 'pair-key': KEY, node: '' }, {})),
    '--node must be 1..128 characters, got ""',
  );
  assert.is(
    message(() => pairOptionsOf({ 'peer-listen': '127.0.0.1:0', 'pair-key': KEY, 'heartbeat-misses': 1.5 }, {})),
    '--heartbeat-misses must be an integer 1..1000, got 1.5',
  );
});

test("--ack-after: the gateway takes standby, a device received or app; each side's help lists its own", () => {
  assert.is(ackAfterOf({ 'ack-after': 'standby' }, 'gateway'), 'standby');
  assert.is(ackAfterOf({}, 'device'), 'received');
  assert.is(
    code(() => ackAfterOf({ 'ack-after': 'standby' }, 'device')),
    'HF_ERR_OPTION',
  );
  assert.is(
    message(() => ackAfterOf({ 'ack-after': 'later' }, 'gateway')),
    `--ack-after must be 'received', 'app' or 'standby', got "later"`,
  );
  assert.is(
    message(() => ackAfterOf({ 'ack-after': 'downstream' }, 'device')),
    "--ack-after 'downstream' is not built yet: use 'received' or 'app'",
  );
  assert.is(ackAfterFlag('gateway').meta, 'received|app|standby');
  assert.is(ackAfterFlag('device').meta, 'received|app');
  assert.match(ackAfterFlag('gateway').help, /the device's messages/);
  assert.match(ackAfterFlag('device').help, /the gateway's messages/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('--advertise URL[,HOST:PORT]: each gateway with its TCP address or none; bad ones are HF_ERR_OPTION naming the flag; it needs a pair', () => {
  assert.is(advertiseOf({}), undefined);
  assert.equal(advertiseOf({ advertise: ['http://10.0.0.1:8080', 'https://b.example:8443/v1/link,10.0.0.2:7000'] }), [
    { url: 'http://10.0.0.1:8080', tcp: null },
    { url: 'https://b.example:8443/v1/link', tcp: '10.0.0.2:7000' },
  ]);
  for (const bad of [['ftp://x'], ['not a url'], ['http://a:1,no-port'], Array.from({ length: 9 }, () => 'http://a/')]) {
    assert.is(
      code(() => advertiseOf({ advertise: bad })),
      'HF_ERR_OPTION',
      bad.join(' '),
    );
    assert.match(
      message(() => advertiseOf({ advertise: bad })),
      /--advertise/,
    );
  }
  assert.match(
    message(() => pairOptionsOf({ advertise: ['http://a/'], 'pair-key': KEY })),
    /needs --peer-listen HOST:PORT or --standby-of/,
  );
});

test.run();
