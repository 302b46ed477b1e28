/** The fuzzer's command-line options (main.ts): parsed into FuzzOptions, bad ones HF_ERR_OPTION. */
import { ErrorCode, hfError } from '../../firmware/errors';
import { FUZZ_DEFAULTS, type FuzzOptions } from './runner';

export const USAGE = `usage: npm run fuzz -- [options]
  --seed S          seed of the run, a u32 (default: random, printed)
  --count N         inputs (default ${FUZZ_DEFAULTS.count})
  --only INDEX      run input INDEX of the seed alone (to replay a failure)
  --max-seconds S   stop after S seconds (default ${FUZZ_DEFAULTS.maxSeconds})
  --max-input-ms MS longest one input may take (default ${FUZZ_DEFAULTS.maxInputMs})
  --check-every N   inputs between checks of a real session and the heap (default ${FUZZ_DEFAULTS.checkEvery})`;

function int(flag: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || n < min || n > max) throw hfError(ErrorCode.OPTION, `${flag} must be an integer in ${min}..${max}, got ${JSON.stringify(v ?? '')}`);
  return n;
}

export function parseFuzzArgs(argv: string[]): FuzzOptions | null {
  const o: FuzzOptions = { seed: Math.floor(Math.random() * 0x100000000) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    switch (a) {
      case '--help':
      case '-h':
        return null;
      case '--seed':
        o.seed = int(a, v, 0, 0xffffffff);
        break;
      case '--count':
        o.count = int(a, v, 1, 1e9);
        break;
      case '--only':
        o.only = int(a, v, 0, 1e9);
        break;
      case '--max-seconds':
        o.maxSeconds = int(a, v, 1, 1e6);
        break;
      case '--max-input-ms':
        o.maxInputMs = int(a, v, 1, 1e6);
        break;
      case '--check-every':
        o.checkEvery = int(a, v, 1, 1e9);
        break;
      default:
        throw hfError(ErrorCode.OPTION, `unknown option ${JSON.stringify(a)} (--help lists them)`);
    }
    i++;
  }
  return o;
}
