/**
 * The link's central property, on the sim target: random traffic both ways, random sizes, random
 * ring and bundle bounds, up to 30% loss and 10% duplication with reordering, outages, transport
 * switches and paused receivers; about a third of the seeds run ackAfter 'app' on both ends, each
 * application confirming every message after a random delay (a crashed device's application keeps
 * only what it confirmed). Every message arrives exactly once and in order on each side, the
 * rings stay within bounds, and the session either stays up or fails cleanly after its limit.
 *
 * 2,000 seeds by default; SOAK=1 runs 50,000; SEED=n runs one seed (a failure prints its seed).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Outcome, drawScenario, runScenario } from './support/traffic';

const one = process.env.SEED !== undefined ? Number(process.env.SEED) : null;
const count = process.env.SOAK ? 50_000 : 2_000;
const first = Number(process.env.SEED_FROM ?? 1);

test(one !== null ? `seed ${one}` : `${count} random seeds`, () => {
  const seeds = one !== null ? [one] : Array.from({ length: count }, (_, i) => first + i);
  const failures: string[] = [];
  let failedSessions = 0;
  let delivered = 0;
  for (const seed of seeds) {
    let out: Outcome;
    try {
      out = runScenario(drawScenario(seed));
    } catch (e) {
      failures.push(`seed ${seed} threw: ${(e as Error).stack}`);
      continue;
    }
    delivered += out.deliveredUp + out.deliveredDown;
    if (out.failed) failedSessions++;
    if (out.error !== null) failures.push(`seed ${seed}: ${out.error}`);
    if (failures.length >= 10) break;
  }
  for (const f of failures) console.log(`  ${f}\n    replay: SEED=${/seed (\d+)/.exec(f)?.[1]} npm test link.property`);
  if (one === null) console.log(`  ${seeds.length} seeds: ${delivered} messages delivered, ${failedSessions} sessions failed cleanly (outages past the limit)`);
  assert.is(failures.length, 0, `${failures.length} seed(s) failed; first: ${failures[0]}`);
});

test.run();
