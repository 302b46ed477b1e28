/**
 * `npm run fuzz -- [--seed S] [--count N] [--only INDEX] [--max-seconds S] [--max-input-ms MS]
 * [--check-every N]`: runs the fuzzer (runner.ts) and prints its seed first, a summary, and a last
 * line of JSON. Exit status 0 when every input passed, 1 on a failure, 2 for a bad option.
 */
import { isHfError } from '../../firmware/errors';
import { USAGE, parseFuzzArgs } from './args';
import { FUZZ_DEFAULTS, type FuzzOptions, runFuzz } from './runner';
import { summary } from './summary';

async function main(): Promise<number> {
  let o: FuzzOptions | null;
  try {
    o = parseFuzzArgs(process.argv.slice(2));
  } catch (e) {
    if (!isHfError(e)) throw e;
    console.error(`fuzz: ${e.code}: ${e.message}`);
    return 2;
  }
  if (o === null) {
    console.log(USAGE);
    return 0;
  }
  const what = o.only !== undefined ? `input ${o.only} alone` : `${o.count ?? FUZZ_DEFAULTS.count} inputs`;
  console.log(`fuzz: seed ${o.seed}, ${what} (replay: npm run fuzz -- --seed ${o.seed})`);
  const r = await runFuzz({ ...o, log: (l) => console.log(`fuzz: ${l}`) });
  for (const line of summary(r)) console.log(line);
  const { failure, ...rest } = r;
  console.log(JSON.stringify({ ...rest, failure: failure === null ? null : { ...failure, stack: undefined } }));
  return r.failure === null ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (e) => {
    console.error('fuzz: crashed:', e);
    process.exit(70);
  },
);
