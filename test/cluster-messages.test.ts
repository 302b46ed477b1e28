/** The cluster control channel's messages (targets/host/gateway/cluster/cluster-messages.ts). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeValue } from '../firmware/cbor-value';
import { type ClusterMessage, checkClusterMessage, decodeClusterMessage, encodeClusterMessage } from '../targets/host/gateway/cluster/cluster-messages';
import { code, message } from './support/errors';

const hb: ClusterMessage = {
  t: 'hb',
  node: 'n1',
  incarnation: 1700000000000,
  url: 'http://127.0.0.1:1/v1/link',
  tcp: '127.0.0.1:2',
  labels: { site: 'berlin' },
  services: ['db'],
  reach: ['127.0.0.1:5432', '[::1]:22'],
  sessions: 3,
  draining: false,
};

test('every kind goes round', () => {
  const all: ClusterMessage[] = [
    hb,
    { t: 'leave', node: 'n1', inc: 5 },
    { t: 'handoff', from: 'n2', inc: 9, device: 'pi-1', epoch: 3, snap: new Uint8Array([1, 2, 3]) },
    { t: 'ok', epoch: 4 },
    { t: 'err', code: 'HF_ERR_EPOCH', message: 'stale' },
    { t: 'relay', from: 'n3', inc: 2, body: new Uint8Array([0xa1]), addr: '127.0.0.1' },
    { t: 'answer', status: 200, code: '', body: new Uint8Array([0xa2]) },
    { t: 'pipe', from: 'n2', inc: 7, id: '0123456789abcdef', target: 'db.local:5432' },
  ];
  for (const m of all) assert.equal(decodeClusterMessage(encodeClusterMessage(m)), m, m.t);
});

test('malformed messages are HF_ERR_PEER naming the field', () => {
  const enc = (v: unknown): Uint8Array => encodeValue(v);
  assert.is(
    code(() => decodeClusterMessage(new Uint8Array([0xff]))),
    'HF_ERR_PEER',
  );
  assert.is(
    code(() => decodeClusterMessage(enc([1, 2]))),
    'HF_ERR_PEER',
  );
  assert.match(
    message(() => checkClusterMessage({ t: 'nope' })),
    'not a known kind',
  );
  const wire = { t: 'hb', node: 'n1', inc: 1, url: '', tcp: '', labels: {}, services: [], sessions: 0, draining: false };
  assert.is(checkClusterMessage(wire).t, 'hb');
  assert.equal((checkClusterMessage(wire) as { reach: string[] }).reach, [], 'a heartbeat without reach: none');
  const pipe = { t: 'pipe', from: 'n2', inc: 1, id: '0123456789abcdef', target: '127.0.0.1:22' };
  const cases: [Record<string, unknown>, string][] = [
    [{ ...wire, node: 'a.b' }, 'node'],
    [{ ...wire, node: '' }, 'node'],
    [{ ...wire, inc: -1 }, 'inc'],
    [{ ...wire, labels: [] }, 'labels'],
    [{ ...wire, labels: { site: 3 } }, 'labels.site'],
    [{ ...wire, services: ['x', ''] }, 'services[1]'],
    [{ ...wire, draining: 1 }, 'draining'],
    [{ ...wire, reach: ['127.0.0.1:22', 'nope'] }, 'reach[1]'],
    [{ ...wire, reach: '127.0.0.1:22' }, 'reach'],
    [{ ...pipe, id: '0123' }, 'id'],
    [{ ...pipe, id: '0123456789ABCDEF' }, 'id'],
    [{ ...pipe, target: '127.0.0.1:0' }, 'target'],
    [{ ...pipe, from: 'a b' }, 'from'],
    [{ t: 'handoff', from: 'n2', inc: 1, device: '', epoch: 0, snap: new Uint8Array(1) }, 'device'],
    [{ t: 'handoff', from: 'n2', inc: 1, device: 'd', epoch: 0, snap: new Uint8Array(0) }, 'snap'],
    [{ t: 'handoff', from: 'n2', inc: 1, device: 'd', epoch: 1.5, snap: new Uint8Array(1) }, 'epoch'],
    [{ t: 'err', code: '', message: '' }, 'code'],
    [{ t: 'relay', from: 'n3', inc: 2, body: 'x', addr: '' }, 'body'],
    [{ t: 'answer', status: 99, code: '', body: new Uint8Array(0) }, 'status'],
  ];
  for (const [v, field] of cases) {
    assert.is(
      code(() => checkClusterMessage(v)),
      'HF_ERR_PEER',
      field,
    );
    assert.match(
      message(() => checkClusterMessage(v)),
      field,
    );
  }
});

test.run();
