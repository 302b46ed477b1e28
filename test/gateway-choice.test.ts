/**
 * The device's choice among its gateways (targets/host/device/gateway-choice.ts): it stays while
 * answered, moves after failuresToMove failures in a row, at once on a standby's or a fenced answer,
 * never with one gateway; epochs only rise, and an answer from an older one is fenced.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrorCode } from '../firmware/errors';
import { GatewayChoice, Verdict } from '../targets/host/device/gateway-choice';

test('moves after failuresToMove failures in a row; an answer resets the count', () => {
  const c = new GatewayChoice(2, { failuresToMove: 3 });
  assert.not.ok(c.failed(ErrorCode.CONNECT));
  assert.not.ok(c.failed(ErrorCode.TIMEOUT));
  assert.is(c.answered(0), Verdict.TAKE);
  assert.not.ok(c.failed(ErrorCode.CONNECT));
  assert.not.ok(c.failed(ErrorCode.CONNECT));
  assert.ok(c.failed(ErrorCode.CONNECT));
  assert.is(c.move(), 1);
  assert.not.ok(c.failed(ErrorCode.CONNECT), 'the count starts again at the new gateway');
  assert.not.ok(c.failed(ErrorCode.CONNECT));
  assert.ok(c.failed(ErrorCode.CONNECT));
  assert.is(c.move(), 0, 'round the list');
  assert.is(c.moves, 2);
});

test('a standby or a fenced answer moves at once; one gateway never moves', () => {
  const c = new GatewayChoice(3);
  assert.ok(c.failed(ErrorCode.STANDBY));
  assert.ok(c.failed(ErrorCode.EPOCH));
  const one = new GatewayChoice(1, { failuresToMove: 1 });
  for (let i = 0; i < 10; i++) assert.not.ok(one.failed(ErrorCode.CONNECT));
  assert.not.ok(one.failed(ErrorCode.STANDBY));
});

test('epochs only rise; an answer from an older epoch is fenced; 0 (no pair) is always taken', () => {
  const c = new GatewayChoice(2);
  assert.is(c.answered(2), Verdict.TAKE);
  assert.is(c.epoch, 2);
  assert.is(c.answered(1), Verdict.FENCED);
  assert.is(c.epoch, 2);
  assert.is(c.answered(0), Verdict.TAKE);
  assert.is(c.answered(3), Verdict.TAKE);
  assert.is(c.answered(2), Verdict.FENCED);
  assert.is(c.epoch, 3);
});

test('failuresToMove is checked', () => {
  for (const bad of [0, -1, 1.5, 1001, Number.NaN]) assert.throws(() => new GatewayChoice(2, { failuresToMove: bad }), /failuresToMove/);
});

test.run();
