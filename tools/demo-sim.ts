/**
 * `npm run demo:sim`: a device and a gateway on the sim target, over a network that loses 20% of
 * requests and responses, duplicates 5% and reorders; prints what each side receives.
 */
import { SimPair } from '../targets/sim/pair';

const text = (b: Uint8Array, o: number, l: number): string => Buffer.from(b.subarray(o, o + l)).toString();
const faults = { drop: 0.2, dup: 0.05, delayMin: 5, delayMax: 80 };
const pair = new SimPair({
  seed: Number(process.env.SEED ?? 7),
  requests: faults,
  responses: faults,
  onGatewayMessage: (b, o, l) => {
    console.log(`t=${(pair.now / 1000).toFixed(3)}s gateway <- ${text(b, o, l)}`);
    return true;
  },
  onDeviceMessage: (b, o, l) => {
    console.log(`t=${(pair.now / 1000).toFixed(3)}s device  <- ${text(b, o, l)}`);
    return true;
  },
});
pair.start();
pair.run(30_000, () => pair.server !== null && pair.client.sid !== null);
console.log(`t=${(pair.now / 1000).toFixed(3)}s session open`);
for (let i = 0; i < 10; i++) {
  pair.clock.schedule(200 * i, () => pair.deviceSend(Buffer.from(`reading ${i}: ${(20 + Math.sin(i)).toFixed(2)} C`)));
  pair.clock.schedule(300 * i + 50, () => pair.gatewaySend(Buffer.from(`command ${i}`)));
}
pair.run(20_000);
const c = pair.client.ep.stats;
console.log(`network: ${pair.net.counts.sent} packets, ${pair.net.counts.dropped} dropped, ${pair.net.counts.duplicated} duplicated`);
console.log(`device: ${c.messagesOut} sent, ${c.retransmits} retransmitted, ${c.messagesIn} received, ${c.duplicatesIn} duplicates discarded`);
