/**
 * `npm run bench:forward` (through bench/forward/run.js): one stream on loopback through each row —
 * raw (straight to the target), socat, `ssh -L`, and holdfast's `--forward` over direct TCP, over
 * HTTP, and over TLS on each — measured with the same workloads against the same target
 * (bench/forward/target.ts), all in this process:
 *
 *   c2s         client -> target, MIB MiB in 64 KiB writes; done when the sink answers it has them all
 *   s2c         target -> client, MIB MiB; done when the client has them all
 *   both        MIB MiB each way at once; the figure is both directions added up
 *   first_byte  a new forwarded connection: connect, write 1 byte, the target echoes it; the median
 *               of N connections, one after another
 *
 * Before the measured runs each row moves MIB/8 each way unmeasured (buffers and code paths warm);
 * each goodput workload then runs --runs times (default 3), the best kept, as bench:peers keeps the
 * best of three: on a shared machine the best run is the one least disturbed by others.
 * Every run has a time limit (--run-timeout-s) and so has every row (--row-timeout-s): a run that
 * overruns is reported as `timeout` with how far it got, and the row goes on with its next workload.
 * Rows run one after another; each stops what it started (by PID) before the next. Prints the table,
 * writes bench/results/forward.json and forward.md (--out DIR), and ends with one JSON line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { nowMs } from '../flow';
import { errorText } from '../ipc';
import { machine } from '../report';
import { makeTlsDir, removeTlsDir } from '../tls';
import { baselineRow, CLI, HOLDFAST_ROWS } from './holdfast';
import { bothWays, clientToTarget, firstBytes, median, type Run, RunTimeout, targetToClient } from './load';
import { killAll } from './proc';
import { raw, socat } from './relays';
import { type Cell, jsonLine, type RowResult, table, WORKLOADS } from './report';
import { type Ctx, type Row, Skip, type Started } from './row';
import { ssh } from './ssh';
import { Target } from './target';
import { flagNumber } from '../flag-number';

const ROOT = path.resolve(__dirname, '..', '..');
const ROWS: Row[] = [raw, socat, ssh, ...HOLDFAST_ROWS];

interface Config {
  rows: string[];
  mib: number;
  firstByte: number;
  runs: number;
  runTimeoutMs: number;
  rowTimeoutMs: number;
  setupMs: number;
  out: string;
  /** A checkout whose bin/holdfast runs each holdfast row a second time, as NAME@base, just before it. */
  baseline: string | null;
}

function usage(): string {
  return [
    'usage: npm run bench:forward -- [--rows a,b,...] [--mib N | --quick] [--first-byte N] [--runs N]',
    '         [--run-timeout-s S] [--row-timeout-s S] [--out DIR] [--baseline CHECKOUT]',
    `rows (default: all, in this order): ${ROWS.map((r) => r.name).join(', ')}`,
    '--mib N: MiB per goodput run (default 256; --quick: 32); --first-byte N: new connections timed (default 20)',
    '--runs N: measured runs per goodput workload, the best kept (default 3)',
    '--run-timeout-s: longest one run may take (default 90); --row-timeout-s: one row, all its workloads (default 300)',
    '--out DIR: where forward.json and forward.md go (default bench/results)',
    '--baseline CHECKOUT: another checkout (its npm install done); each holdfast row runs first with its',
    '         bin/holdfast as NAME@base, then with this one, and the report gives this / base',
    '',
  ].join('\n');
}

function parseArgs(argv: string[]): Config {
  const c: Config = {
    rows: ROWS.map((r) => r.name),
    mib: 256,
    firstByte: 20,
    runs: 3,
    runTimeoutMs: 90_000,
    rowTimeoutMs: 300_000,
    setupMs: 20_000,
    out: path.join(ROOT, 'bench', 'results'),
    baseline: null,
  };
  const num = flagNumber;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rows') {
      const names = (argv[++i] ?? '').split(',').map((s) => s.trim());
      for (const n of names) if (!ROWS.some((r) => r.name === n)) throw new Error(`--rows: no row ${JSON.stringify(n)} (rows: ${ROWS.map((r) => r.name).join(', ')})`);
      c.rows = ROWS.map((r) => r.name).filter((n) => names.includes(n));
    } else if (a === '--mib') c.mib = num(a, argv[++i], 1 / 1024);
    else if (a === '--quick') c.mib = 32;
    else if (a === '--first-byte') c.firstByte = Math.round(num(a, argv[++i], 1));
    else if (a === '--runs') c.runs = Math.round(num(a, argv[++i], 1));
    else if (a === '--run-timeout-s') c.runTimeoutMs = num(a, argv[++i], 1) * 1000;
    else if (a === '--row-timeout-s') c.rowTimeoutMs = num(a, argv[++i], 1) * 1000;
    else if (a === '--out') c.out = path.resolve(argv[++i] ?? '.');
    else if (a === '--baseline') {
      c.baseline = path.resolve(argv[++i] ?? '');
      if (!fs.existsSync(path.join(c.baseline, 'bin', 'holdfast'))) throw new Error(`--baseline: no bin/holdfast in ${c.baseline}`);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (--help lists them)`);
  }
  return c;
}

const cell = (status: string): Cell => ({ value: null, status, samples: [] });

/** One row: start it, warm it, run each workload within the row's time, stop it. */
async function runRow(c: Config, row: Row, ctx: Ctx, target: Target): Promise<RowResult> {
  const t0 = nowMs();
  const deadline = t0 + c.rowTimeoutMs;
  const r: RowResult = {
    name: row.name,
    about: row.about,
    status: 'ok',
    info: {},
    cells: { c2s: cell('not run'), s2c: cell('not run'), both: cell('not run'), first_byte: cell('not run') },
    setup_ms: null,
    seconds: 0,
  };
  const len = Math.round(c.mib * 1048576);
  let started: Started;
  try {
    started = await row.start(ctx);
    r.setup_ms = Math.round(nowMs() - t0);
    r.info = started.info;
  } catch (e) {
    r.status = e instanceof Skip ? 'skipped' : 'failed';
    r.note = `${r.status}: ${errorText(e)}`;
    r.seconds = Number(((nowMs() - t0) / 1000).toFixed(1));
    return r;
  }
  const limit = (): number => Math.min(c.runTimeoutMs, deadline - nowMs());
  try {
    const warm = Math.max(65536, Math.round(len / 8));
    try {
      await clientToTarget(started.port, warm, Math.max(1, limit()));
      await targetToClient(started.port, warm, Math.max(1, limit()));
    } catch (e) {
      r.note = `warm-up: ${errorText(e)}`;
      target.dropAll();
    }
    const goodput: [keyof RowResult['cells'], (port: number, n: number, ms: number) => Promise<Run>][] = [
      ['c2s', clientToTarget],
      ['s2c', targetToClient],
      ['both', bothWays],
    ];
    for (const [w, fn] of goodput) {
      const x = r.cells[w];
      for (let i = 0; i < c.runs; i++) {
        if (limit() <= 0) {
          x.note = `${w}: the row's ${c.rowTimeoutMs / 1000} s were used up`;
          break;
        }
        try {
          target.lastSinkGapMs = null;
          const run = await fn(started.port, len, limit());
          x.samples.push(Number(run.mbPerS.toFixed(1)));
          const gap = Math.max(run.clientGapMs ?? 0, w === 's2c' ? 0 : (target.lastSinkGapMs ?? 0));
          x.longest_gap_ms = [...(x.longest_gap_ms ?? []), Number(gap.toFixed(1))];
          x.status = 'ok';
        } catch (e) {
          x.status = e instanceof RunTimeout ? 'timeout' : 'failed';
          x.note = errorText(e);
          target.dropAll();
          break;
        }
      }
      if (x.samples.length > 0) x.value = Math.max(...x.samples);
    }
    const fb = r.cells.first_byte;
    if (limit() > 0) {
      try {
        fb.samples = (await firstBytes(started.port, c.firstByte, limit())).map((ms) => Number(ms.toFixed(3)));
        const mid = median(fb.samples);
        fb.value = mid === null ? null : Number(mid.toFixed(3));
        fb.status = 'ok';
      } catch (e) {
        fb.status = e instanceof RunTimeout ? 'timeout' : 'failed';
        fb.note = errorText(e);
      }
    } else fb.note = `first byte: the row's ${c.rowTimeoutMs / 1000} s were used up`;
  } finally {
    await started.stop();
    target.dropAll();
  }
  if (WORKLOADS.some((w) => r.cells[w].status === 'timeout')) r.status = 'timeout';
  else if (WORKLOADS.some((w) => r.cells[w].status !== 'ok')) r.status = 'failed';
  r.seconds = Number(((nowMs() - t0) / 1000).toFixed(1));
  return r;
}

/** The certificate and key bench/tls.ts made in `dir`: the one file ending in cert.pem and the one ending in key.pem. */
function certFiles(dir: string): { cert: string; key: string } {
  const names = fs.readdirSync(dir);
  const one = (end: string): string => {
    const f = names.filter((n) => n.endsWith(end));
    if (f.length !== 1) throw new Error(`the TLS rows' certificate: expected one *${end} in ${dir}, found ${f.length}`);
    return path.join(dir, f[0]);
  };
  return { cert: one('cert.pem'), key: one('key.pem') };
}

function version(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[0] ?? 'missing';
}

async function main(): Promise<void> {
  let c: Config;
  try {
    c = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench:forward: ${errorText(e)}\n${usage()}`);
    process.exit(2);
  }
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bench-forward-'));
  let tlsDir: string | null = null;
  let tlsFiles: { cert: string; key: string } | null = null;
  const cleanup = (): void => {
    killAll();
    if (tlsDir !== null) removeTlsDir(tlsDir);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // The whole run is bounded: every row by its own limit, and the run by their sum and a minute.
  const limitMs = c.rows.length * c.rowTimeoutMs + 60_000;
  const overall = setTimeout(() => {
    process.stderr.write(`bench:forward: the run's limit of ${limitMs / 1000} s was reached; stopping\n`);
    cleanup();
    process.exit(1);
  }, limitMs);
  overall.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      cleanup();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  const target = new Target();
  const results: RowResult[] = [];
  try {
    await target.listen();
    const ctx: Ctx = {
      target: target.port,
      dir,
      setupMs: c.setupMs,
      tls: () => {
        if (tlsFiles === null) {
          tlsDir = makeTlsDir();
          tlsFiles = certFiles(tlsDir);
          fs.chmodSync(tlsFiles.key, 0o600); // the gateway refuses a key others may read
        }
        return tlsFiles;
      },
    };
    const rows: Row[] = [];
    for (const name of c.rows) {
      const row = ROWS.find((r) => r.name === name)!;
      if (c.baseline !== null && HOLDFAST_ROWS.includes(row)) rows.push(baselineRow(row, c.baseline));
      rows.push(row);
    }
    if (c.rows.some((n) => n.startsWith('holdfast'))) {
      // bin/holdfast bundles the CLI when a source changed: once here, not inside a row's setup.
      for (const cli of c.baseline === null ? [CLI] : [CLI, path.join(c.baseline, 'bin', 'holdfast')]) {
        const b = spawnSync(process.execPath, [cli, 'gateway', '--help'], { encoding: 'utf8', timeout: 120_000 });
        if (b.status !== 0) throw new Error(`${cli} gateway --help: exit ${b.status}\n${b.stderr}`);
      }
    }
    process.stdout.write(`bench:forward: ${rows.map((r) => r.name).join(', ')}; ${c.mib} MiB per goodput run (best of ${c.runs}), ${c.firstByte} new connections for the first byte\n`);
    for (const row of rows) {
      const name = row.name;
      process.stdout.write(`  ${name} ... `);
      const r = await runRow(c, row, ctx, target);
      results.push(r);
      const figures = WORKLOADS.map((w) => `${w} ${r.cells[w].value ?? r.cells[w].status}`).join(', ');
      process.stdout.write(`${r.seconds} s: ${r.status === 'skipped' || r.status === 'failed' ? r.note : figures}\n`);
    }
  } finally {
    await target.close();
    cleanup();
  }
  const m: Partial<ReturnType<typeof machine>> = machine(ROOT);
  delete m.peers;
  const tools = {
    ssh: version('ssh', ['-V'], /OpenSSH_\S+/),
    socat: version('socat', ['-V'], /socat version \S+/).replace('socat version ', ''),
    openssl: version('openssl', ['version'], /OpenSSL \S+/),
  };
  const wall = Number(((Date.now() - t0) / 1000).toFixed(1));
  const heading =
    `Run of ${m.date} on ${m.nproc} cores (${m.cpu}), Node ${m.node}, ${m.os}; ${tools.ssh}, socat ${tools.socat}; \`npm run bench:forward\` took ${wall} s. ` +
    `${c.mib} MiB per goodput run (best of ${c.runs}, after ${Math.max(0.0625, c.mib / 8)} MiB each way unmeasured), 64 KiB writes; first byte: median of ${c.firstByte} new connections; MB/s = 10^6 bytes/s.`;
  const md = table(results, heading);
  fs.mkdirSync(c.out, { recursive: true });
  const line = jsonLine(results);
  fs.writeFileSync(
    path.join(c.out, 'forward.json'),
    JSON.stringify({ machine: m, tools, config: { ...c, out: undefined }, wall_seconds: wall, summary: JSON.parse(line), rows: results }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(c.out, 'forward.md'), md);
  process.stdout.write(`\n${md}\n`);
  const shown = path.relative(ROOT, c.out).startsWith('..') ? c.out : path.relative(ROOT, c.out);
  process.stdout.write(`wrote ${path.join(shown, 'forward.json')} and forward.md (${wall} s)\n`);
  process.stdout.write(line + '\n');
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`bench:forward: ${e.stack ?? e.message}\n`);
    killAll();
    process.exit(1);
  },
);
