/** Session state is data: both roles snapshot mid-stream and resume elsewhere losing nothing. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientLink } from '../firmware/client-link';
import { LinkState } from '../firmware/link-base';
import { ServerLink } from '../firmware/server-link';
import { type ClientData, decodeSnapshot } from '../firmware/snapshot';
import { Manual } from './support/manual';
import { code } from './support/errors';

/** A session with messages in flight both ways, some delivered, some lost on the wire. */
function midStream(): Manual {
  const m = new Manual({ maxMessages: 4 }, { maxMessages: 4 });
  m.open();
  m.deliverRequest();
  for (let i = 0; i < 6; i++) m.send(`up${i}`);
  for (let i = 0; i < 5; i++) m.gatewaySend(`down${i}`);
  m.deliverRequest(); // some of the device's messages arrive
  m.dropAll(); // the rest of what is in flight is lost
  return m;
}

test('a client snapshot restores to an identical snapshot', () => {
  const m = midStream();
  const a = m.client.snapshot(m.now);
  const r = ClientLink.restore(a, m.now, { id: 'dev', random: () => {} }, { transmit: () => {}, deliver: () => true });
  const b = r.snapshot(m.now);
  const da = decodeSnapshot<ClientData>(a, 'client');
  const db = decodeSnapshot<ClientData>(b, 'client');
  // Request numbers jump after a restore and transmissions restart; everything else is the same.
  assert.equal(
    db.ep.out[3].map((x) => [...x[3]]),
    da.ep.out[3].map((x) => [...x[3]]),
  );
  assert.equal(db.ep.in, da.ep.in);
  assert.equal(db.link.sid, da.link.sid);
  assert.is(r.state, m.client.state);
  assert.is(r.ep.out.length, m.client.ep.out.length);
});

test('both sides move mid-stream (snapshot, restore on new objects) and every message arrives once', () => {
  const m = midStream();
  const gotBefore = { up: [...m.gatewayGot], down: [...m.deviceGot] };
  const cs = m.client.snapshot(m.now);
  const ss = (m.server as ServerLink).snapshot(m.now);
  // New objects, a clock 10 minutes later (another machine): the restored pair carries on.
  const n = new Manual({ maxMessages: 4 }, { maxMessages: 4 });
  n.now = m.now + 600_000;
  const restoredServer = ServerLink.restore(ss, n.now, {
    answer: (exchange, body, len) => n.answers.push({ exchange, body: body.slice(0, len) }),
    transmit: () => {},
    deliver: (b, o, l) => {
      n.gatewayGot.push(Buffer.from(b.subarray(o, o + l)).toString());
      return true;
    },
  });
  n.acceptor.adopt(restoredServer, n.now);
  n.server = restoredServer;
  const client = ClientLink.restore(
    cs,
    n.now,
    { id: 'dev', random: () => {} },
    {
      transmit: (body, len, rn) => n.requests.push({ rn, body: body.slice(0, len) }),
      deliver: (b, o, l) => {
        n.deviceGot.push(Buffer.from(b.subarray(o, o + l)).toString());
        return true;
      },
    },
  );
  (n as unknown as { client: ClientLink }).client = client;
  client.resumeSession(n.now);
  for (let i = 0; i < 50 && !(client.ep.out.isEmpty && restoredServer.ep.out.isEmpty); i++) {
    n.settle();
    n.advance(500);
  }
  assert.equal([...gotBefore.up, ...n.gatewayGot], ['up0', 'up1', 'up2', 'up3', 'up4', 'up5']);
  assert.equal([...gotBefore.down, ...n.deviceGot], ['down0', 'down1', 'down2', 'down3', 'down4']);
  assert.is(client.state, LinkState.OPEN);
});

test('bad snapshots are refused with HF_ERR_STATE', () => {
  const m = midStream();
  const s = m.client.snapshot(m.now);
  const port = { transmit: () => {}, deliver: () => true };
  assert.is(
    code(() => ClientLink.restore(new Uint8Array([1, 2, 3]), 0, { id: 'x', random: () => {} }, port)),
    'HF_ERR_STATE',
  );
  assert.is(
    code(() => ClientLink.restore(s.subarray(0, s.length - 5), 0, { id: 'x', random: () => {} }, port)),
    'HF_ERR_STATE',
  );
  assert.is(
    code(() => ServerLink.restore(s, 0, { answer: () => {}, transmit: () => {}, deliver: () => true })),
    'HF_ERR_STATE',
    'client snapshot into a server',
  );
});

test.run();
