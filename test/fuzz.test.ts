/**
 * The fuzzer (tools/fuzz/) on 20,000 inputs of a fixed seed: every decoder and the in-process
 * gateway take or refuse each with a coded error, in time, and a real session still runs through
 * the gateway at each check. A failure names the seed and the input, and how to replay it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeValue } from '../firmware/cbor-value';
import { Prng } from '../targets/sim/prng';
import { genBundle, genControl, genMuxFrame, genValue } from '../tools/fuzz/generators';
import { mutate } from '../tools/fuzz/mutators';
import { inputSeed, runFuzz } from '../tools/fuzz/runner';
import { summary } from '../tools/fuzz/summary';
import { DECODER_TARGETS } from '../tools/fuzz/targets';
import { parseFuzzArgs } from '../tools/fuzz/args';

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);

test('20,000 inputs through the decoders and the gateway: coded refusals only, in time, the gateway still serves', async () => {
  console.log(`fuzz: seed ${SEED} (replay: npm run fuzz -- --seed ${SEED} --count 20000)`);
  const r = await runFuzz({ seed: SEED, count: 20000, checkEvery: 5000 });
  const lines = summary(r);
  if (r.failure !== null) console.log(lines.join('\n'));
  assert.is(r.failure, null, lines.join('\n'));
  assert.is(r.inputs, 20000);
  assert.ok(r.checks >= 5, `${r.checks} real-session checks`);
  for (const [name, t] of Object.entries(r.targets)) {
    assert.ok(t.taken > 0, `${name}: some inputs taken`);
    assert.ok(Object.keys(t.rejects).length > 0, `${name}: some inputs refused`);
  }
});

test('input i of a seed is the same bytes every time (so --only replays it)', () => {
  for (let i = 0; i < 50; i++) {
    const t = DECODER_TARGETS[i % DECODER_TARGETS.length];
    const a = t.make(new Prng(inputSeed(7, i)), 0.9).bytes;
    const b = t.make(new Prng(inputSeed(7, i)), 0.9).bytes;
    assert.equal(Buffer.from(a).toString('hex'), Buffer.from(b).toString('hex'));
  }
  assert.is.not(inputSeed(7, 1), inputSeed(7, 2));
  assert.is.not(inputSeed(7, 1), inputSeed(8, 1));
});

test('generated inputs are valid; mutations change them', () => {
  const p = new Prng(99);
  for (let i = 0; i < 200; i++) {
    decodeValue(genValue(p));
    for (const g of [genValue, genControl, genBundle, genMuxFrame]) {
      const b = g(p);
      const m = mutate(p, b, g(p));
      assert.ok(m !== b, 'a new array');
    }
  }
});

test('fuzz options: replay flags parse, bad ones are HF_ERR_OPTION', () => {
  assert.equal(parseFuzzArgs(['--seed', '5', '--count', '10', '--only', '3']), { seed: 5, count: 10, only: 3 });
  assert.is(parseFuzzArgs(['--help']), null);
  for (const bad of [['--seed', 'x'], ['--count', '0'], ['--nope']]) {
    try {
      parseFuzzArgs(bad);
      assert.unreachable(`${bad.join(' ')} accepted`);
    } catch (e) {
      assert.is((e as { code?: string }).code, 'HF_ERR_OPTION', bad.join(' '));
    }
  }
});

test.run();
