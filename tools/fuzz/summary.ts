/** The fuzzer's report for people: per target, the slowest input, refusals by code, and a failure's replay command. */
import type { FuzzReport } from './runner';

export function summary(r: FuzzReport): string[] {
  const out: string[] = [];
  const rate = r.elapsedMs > 0 ? Math.round((r.inputs / r.elapsedMs) * 1000) : 0;
  out.push(`fuzz: seed ${r.seed}: ${r.inputs} inputs in ${(r.elapsedMs / 1000).toFixed(1)} s (${rate}/s), ${r.checks} real-session checks (slowest ${r.slowestCheckMs} ms)`);
  for (const [name, t] of Object.entries(r.targets)) {
    const codes = Object.entries(t.rejects)
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    out.push(`  ${name.padEnd(11)} ${String(t.inputs).padStart(8)} inputs, ${String(t.taken).padStart(7)} taken; refused: ${codes === '' ? 'none' : codes}`);
  }
  if (r.slowest !== null)
    out.push(
      `  slowest input: #${r.slowest.index} (${r.slowest.target}, ${r.slowest.bytes} bytes) ${r.slowest.ms} ms${r.retimed > 0 ? ` (${r.retimed} over the limit at first were fast when timed again)` : ''}`,
    );
  out.push(`  heap: ${r.heapMb.first} MiB at the first check, at most ${r.heapMb.max} MiB, ${r.heapMb.last} MiB at the last`);
  if (r.stoppedBy === 'maxSeconds') out.push('  stopped by --max-seconds before every input ran');
  const f = r.failure;
  if (f !== null) {
    out.push(`FAILED: input #${f.index} (${f.target}) of seed ${f.seed}: ${f.reason}`);
    if (f.hex !== '') out.push(`  input (${f.hex.length / 2} bytes): ${f.hex}`);
    if (f.stack) out.push(`  ${f.stack.split('\n').slice(0, 8).join('\n  ')}`);
    out.push(`  replay: npm run fuzz -- --seed ${f.seed} --only ${f.index}`);
  }
  return out;
}
