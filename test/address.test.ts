/**
 * "host:port" addresses (targets/host/net/address.ts) as a table, and the HTTP status of each error code
 * (targets/host/net/http-status.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode, type ErrorCodeValue } from '../firmware/errors';
import { type Address, formatAddress, parseAddress } from '../targets/host/net/address';
import { ERROR_HEADER, statusFor } from '../targets/host/net/http-status';
import { failure } from './support/errors';

test('parseAddress: valid forms', () => {
  const table: [string, Address, string][] = [
    // input, parsed, formatted back
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }, '127.0.0.1:8080'],
    ['0.0.0.0:1', { host: '0.0.0.0', port: 1 }, '0.0.0.0:1'],
    ['[::1]:8080', { host: '::1', port: 8080 }, '[::1]:8080'],
    ['[::]:0', { host: '::', port: 0 }, '[::]:0'],
    ['[2001:db8::17]:443', { host: '2001:db8::17', port: 443 }, '[2001:db8::17]:443'],
    ['[fe80::1%eth0]:9', { host: 'fe80::1%eth0', port: 9 }, '[fe80::1%eth0]:9'],
    ['8080', { host: '127.0.0.1', port: 8080 }, '127.0.0.1:8080'],
    ['0', { host: '127.0.0.1', port: 0 }, '127.0.0.1:0'],
    ['65535', { host: '127.0.0.1', port: 65535 }, '127.0.0.1:65535'],
    ['localhost:0', { host: 'localhost', port: 0 }, 'localhost:0'],
    ['localhost:65535', { host: 'localhost', port: 65535 }, 'localhost:65535'],
    ['gateway.example.com:8443', { host: 'gateway.example.com', port: 8443 }, 'gateway.example.com:8443'],
    ['my-gw_1:80', { host: 'my-gw_1', port: 80 }, 'my-gw_1:80'],
    ['  10.0.0.2:7000\n', { host: '10.0.0.2', port: 7000 }, '10.0.0.2:7000'],
    ['host:0080', { host: 'host', port: 80 }, 'host:80'],
  ];
  for (const [input, want, shown] of table) {
    const a = parseAddress(input, 'listen');
    assert.equal(a, want, JSON.stringify(input));
    assert.is(formatAddress(a), shown, JSON.stringify(input));
    assert.equal(parseAddress(formatAddress(a), 'listen'), a, `${JSON.stringify(input)} round trip`);
  }
});

test('parseAddress: an Address object is checked and copied', () => {
  const obj = { host: '::1', port: 80 };
  const a = parseAddress(obj, 'tcp');
  assert.equal(a, obj);
  assert.is.not(a, obj);
  assert.is(formatAddress(a), '[::1]:80');
  assert.is(failure(() => parseAddress({ host: '', port: 80 }, 'tcp')).code, 'HF_ERR_OPTION');
  assert.is(failure(() => parseAddress({ host: 'h', port: 65536 }, 'tcp')).code, 'HF_ERR_OPTION');
  assert.is(failure(() => parseAddress({ host: 'h', port: 1.5 }, 'tcp')).code, 'HF_ERR_OPTION');
  assert.is(failure(() => parseAddress({ host: 'h', port: '80' } as unknown as Address, 'tcp')).code, 'HF_ERR_OPTION');
  assert.is(failure(() => parseAddress({ host: '[::1]', port: 80 }, 'tcp')).code, 'HF_ERR_OPTION', 'brackets are for the string form');
  assert.is(failure(() => parseAddress({ host: 5, port: 80 } as unknown as Address, 'tcp')).code, 'HF_ERR_OPTION');
  const f = failure(() => parseAddress({ host: 'h', port: -1 }, 'tcp'));
  assert.ok(f.message.includes('tcp') && f.message.includes('-1'), f.message);
});

test('parseAddress: invalid strings are HF_ERR_OPTION naming the option and the value', () => {
  const bad = [
    '',
    '   ',
    ':8080',
    'host:',
    'host',
    'host:port',
    'host:-1',
    'host:65536',
    '65536',
    '99999999999999999999',
    'host:80:90',
    '::1:8080',
    '::1',
    '[::1]',
    '[::1]:',
    '[::1]80',
    '[::1:80',
    '[]:80',
    'a]:80',
    'a b:80',
    'a\tb:80',
    '[a:80',
    'host:8 0',
    'host:1e3',
    'host:0x50',
    'host:+80',
    'host:80.0',
    '-1',
    'http://host:80',
  ];
  for (const input of bad) {
    const f = failure(() => parseAddress(input, 'gateway-tcp'));
    assert.is(f.code, 'HF_ERR_OPTION', JSON.stringify(input));
    assert.ok(f.message.includes('gateway-tcp'), `${f.message} names the option`);
    assert.ok(f.message.includes(JSON.stringify(input)), `${f.message} shows ${JSON.stringify(input)}`);
  }
  for (const v of [null, undefined, 8080]) {
    const f = failure(() => parseAddress(v as unknown as string, 'listen'));
    assert.is(f.code, 'HF_ERR_OPTION', String(v));
    assert.ok(f.message.includes(String(v)), f.message);
  }
});

test('formatAddress: brackets exactly the hosts with a colon', () => {
  assert.is(formatAddress({ host: '1.2.3.4', port: 5 }), '1.2.3.4:5');
  assert.is(formatAddress({ host: 'example.org', port: 0 }), 'example.org:0');
  assert.is(formatAddress({ host: '::ffff:1.2.3.4', port: 65535 }), '[::ffff:1.2.3.4]:65535');
});

test('statusFor: each error code and its HTTP status', () => {
  const table: Record<ErrorCodeValue, number> = {
    HF_ERR_OPTION: 400,
    HF_ERR_CBOR: 400,
    HF_ERR_BUNDLE: 400,
    HF_ERR_LIMIT: 400,
    HF_ERR_WINDOW: 400,
    HF_ERR_ACK: 400,
    HF_ERR_CONFIRM: 400,
    HF_ERR_PROTOCOL: 400,
    HF_ERR_UNKNOWN_SESSION: 403,
    HF_ERR_AUTH: 403,
    HF_ERR_TIMEOUT: 410,
    HF_ERR_CLOSED: 410,
    HF_ERR_TOO_BIG: 400,
    HF_ERR_STATE: 400,
    HF_ERR_STORAGE: 400,
    HF_ERR_BUSY: 503,
    HF_ERR_FORBIDDEN: 403,
    HF_ERR_CONNECT: 400,
    HF_ERR_HTTP: 400,
    HF_ERR_TLS: 400,
    HF_ERR_UNSUPPORTED: 400,
    HF_ERR_COMMAND: 400,
    HF_ERR_UNKNOWN_OP: 400,
    HF_ERR_BAD_ARGS: 400,
    HF_ERR_OVERSIZE: 400,
    HF_ERR_NOT_ALLOWED: 400,
    HF_ERR_OP_FAILED: 400,
    HF_ERR_INTERRUPTED: 400,
    HF_ERR_CMD_TIMEOUT: 400,
    HF_ERR_ANSWER_NOT_KEPT: 400,
    HF_ERR_CANCELLED: 400,
    HF_ERR_EXPIRED: 400,
    HF_ERR_ROLLED_BACK: 400,
    HF_ERR_LOGIN: 401,
    HF_ERR_CSRF: 403,
    HF_ERR_ROLE: 403,
    HF_ERR_RATE_LIMITED: 429,
    HF_ERR_NOT_FOUND: 404,
    HF_ERR_SCHEMA: 500,
    HF_ERR_AUDIT: 500,
    HF_ERR_SELECTOR: 400,
    HF_ERR_NO_MATCH: 400,
    HF_ERR_BODY: 400,
    HF_ERR_STANDBY: 503,
    HF_ERR_PEER: 400,
    HF_ERR_EPOCH: 400,
    HF_ERR_NODE: 400,
    HF_ERR_NATS: 503,
    HF_ERR_MOVED: 409,
    HF_ERR_HANDOFF: 400,
  };
  // The table names every code there is (a new code makes this test ask for its status).
  assert.equal(Object.keys(table).sort(), Object.values(ErrorCode).slice().sort());
  for (const [c, status] of Object.entries(table)) assert.is(statusFor(c as ErrorCodeValue), status, c);
  assert.is(statusFor('HF_ERR_NEW' as ErrorCodeValue), 400, 'an unknown code is a bad request');
  assert.is(ERROR_HEADER, 'x-holdfast-error');
  assert.is(ERROR_HEADER, ERROR_HEADER.toLowerCase(), 'node reports header names in lower case');
});

test.run();
