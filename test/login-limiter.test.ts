/**
 * The failed-login limiter (targets/host/gateway/manage/login-limiter.ts) on a fake clock: per name
 * and per address, the window from the first failure, a success clearing the name only, bounded
 * memory, options checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOGIN_LIMIT_DEFAULTS, LoginLimiter } from '../targets/host/gateway/manage/login-limiter';
import { failure } from './support/errors';

let t = 0;
const now = (): number => t;

test('per name: the limit, then refused until the window from the first failure ends', () => {
  t = 0;
  const l = new LoginLimiter({ perName: 3, perAddress: 100, windowMs: 60_000 }, now);
  for (let i = 0; i < 3; i++) {
    l.check('ada', `10.0.0.${i}`);
    l.failed('ada', `10.0.0.${i}`);
    t += 1000;
  }
  assert.is(l.retryAfterMs('ada', '10.0.0.9'), 57_000, 'from any address');
  assert.equal(
    failure(() => l.check('ada', '10.0.0.9')),
    { code: 'HF_ERR_RATE_LIMITED', message: 'too many failed logins for "ada" or from 10.0.0.9: try again in 57 s' },
  );
  l.check('bob', '10.0.0.9');
  t = 59_999;
  assert.is(l.retryAfterMs('ada', '10.0.0.9'), 1);
  t = 60_000;
  l.check('ada', '10.0.0.9');
  l.failed('ada', '10.0.0.9');
  l.check('ada', '10.0.0.9');
});

test('per address: many names from one address', () => {
  t = 0;
  const l = new LoginLimiter({ perName: 100, perAddress: 4, windowMs: 10_000 }, now);
  for (let i = 0; i < 4; i++) l.failed(`user${i}`, '192.0.2.7');
  assert.is(failure(() => l.check('someone-else', '192.0.2.7')).code, 'HF_ERR_RATE_LIMITED');
  l.check('someone-else', '192.0.2.8');
  t = 10_000;
  l.check('someone-else', '192.0.2.7');
});

test('a success clears the name, not the address', () => {
  t = 0;
  const l = new LoginLimiter({ perName: 2, perAddress: 3, windowMs: 10_000 }, now);
  l.failed('ada', '192.0.2.1');
  l.failed('ada', '192.0.2.1');
  assert.ok(l.retryAfterMs('ada', '192.0.2.2') > 0);
  l.succeeded('ada');
  l.check('ada', '192.0.2.2');
  l.failed('eve', '192.0.2.1');
  assert.ok(l.retryAfterMs('anyone', '192.0.2.1') > 0, 'the address still counts its three');
});

test('memory: at most maxKeys names and addresses; the oldest forgotten', () => {
  t = 0;
  const l = new LoginLimiter({ perName: 1, perAddress: 1, windowMs: 10_000, maxKeys: 3 }, now);
  for (const n of ['a', 'b', 'c', 'd']) l.failed(n, `addr-${n}`);
  l.check('a', 'addr-a');
  assert.ok(l.retryAfterMs('d', 'x') > 0 && l.retryAfterMs('b', 'x') > 0);
});

test('defaults and options', () => {
  assert.equal(new LoginLimiter().o, LOGIN_LIMIT_DEFAULTS);
  assert.equal(LOGIN_LIMIT_DEFAULTS, { perName: 5, perAddress: 20, windowMs: 900_000, maxKeys: 10_000 });
  assert.is(failure(() => new LoginLimiter({ perName: 0 })).code, 'HF_ERR_OPTION');
  assert.is(failure(() => new LoginLimiter({ windowMs: -1 })).code, 'HF_ERR_OPTION');
});

test.run();
