/**
 * `npm run bench:forward` end to end with tiny sizes (1 MiB per goodput run, 3 new connections for
 * the first byte) on the rows raw, socat, ssh and holdfast-tcp, into a temporary directory: it must
 * finish by itself, print the table and end with the JSON line of the six figures, positive where the
 * row ran, and leave no temporary directory behind. Speed is never checked. socat and sshd may be
 * missing outside CI (the rows are then skipped with what to install); HOLDFAST_REQUIRE_SOCAT=1 and
 * HOLDFAST_REQUIRE_SSHD=1 (.ci/run sets both and installs them) make their rows required.
 * Without them on PATH the rows are skipped, saying what to install.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLine, type RowResult } from '../bench/forward/report';

const ROOT = join(__dirname, '..');
const KEYS = ['raw_mb_per_s', 'ssh_mb_per_s', 'socat_mb_per_s', 'holdfast_tcp_mb_per_s', 'holdfast_http_mb_per_s', 'first_byte_ms'];

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, name)));
}

function bench(args: string[], env: Record<string, string>, out: string): { stdout: string; last: Record<string, number | null>; tmp: string } {
  const tmp = join(out, 'tmp');
  mkdirSync(tmp);
  const r = spawnSync(process.execPath, ['bench/forward/run.js', ...args, '--out', out], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, TMPDIR: tmp, ...env },
  });
  assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  const lines = r.stdout.trim().split('\n');
  return { stdout: r.stdout, last: JSON.parse(lines[lines.length - 1]), tmp };
}

test('the JSON line: the client -> target figures and holdfast-tcp first byte, null where a row did not run', () => {
  const cells = (v: number | null): RowResult['cells'] => ({
    c2s: { value: v, status: 'ok', samples: [] },
    s2c: { value: v, status: 'ok', samples: [] },
    both: { value: v, status: 'ok', samples: [] },
    first_byte: { value: 2.5, status: 'ok', samples: [] },
  });
  const row = (name: string, v: number | null): RowResult => ({ name, about: '', status: 'ok', info: {}, cells: cells(v), setup_ms: 1, seconds: 1 });
  const line = JSON.parse(jsonLine([row('raw', 900), row('ssh', 400), row('holdfast-tcp', 200)]));
  assert.equal(Object.keys(line), KEYS);
  assert.equal(line, { raw_mb_per_s: 900, ssh_mb_per_s: 400, socat_mb_per_s: null, holdfast_tcp_mb_per_s: 200, holdfast_http_mb_per_s: null, first_byte_ms: 2.5 });
});

test('a tiny run of raw, socat, ssh and holdfast-tcp prints the table and the JSON line, and cleans up', () => {
  const out = mkdtempSync(join(tmpdir(), 'hf-fwd-'));
  try {
    const socat = onPath('socat') || process.env.HOLDFAST_REQUIRE_SOCAT === '1';
    const ssh = (existsSync('/usr/sbin/sshd') && onPath('ssh') && onPath('ssh-keygen')) || process.env.HOLDFAST_REQUIRE_SSHD === '1';
    const { stdout, last, tmp } = bench(['--rows', 'raw,socat,ssh,holdfast-tcp', '--mib', '1', '--first-byte', '3', '--run-timeout-s', '30'], {}, out);
    assert.equal(Object.keys(last), KEYS, 'the last line has exactly the six figures');
    assert.match(stdout, /\| row \| client -> target MB\/s \| target -> client MB\/s \| both at once MB\/s \(sum\) \| first byte ms \(median\) \|/);
    const ran = ['raw', 'holdfast-tcp', ...(socat ? ['socat'] : []), ...(ssh ? ['ssh'] : [])];
    const doc = JSON.parse(readFileSync(join(out, 'forward.json'), 'utf8'));
    for (const name of ran) {
      const row = stdout.split('\n').find((l) => l.startsWith(`| ${name} | `));
      assert.ok(row !== undefined, `${name} has a row in the table`);
      assert.match(row!, /^\| [\w-]+ \| \d+(?: \(\d+\.\d\d×\))? \| \d+(?: \(\d+\.\d\d×\))? \| \d+(?: \(\d+\.\d\d×\))? \| \d+\.\d{3}(?: \(\d+\.\d\d×\))? \|$/, `${name}: four figures`);
      const r = doc.rows.find((x: { name: string }) => x.name === name);
      assert.is(r.status, 'ok', `${name}: ${r.note ?? ''}`);
      for (const w of ['c2s', 's2c', 'both', 'first_byte']) assert.ok(r.cells[w].value > 0, `${name} ${w}: ${r.cells[w].value}`);
      assert.is(r.cells.first_byte.samples.length, 3, `${name}: three first-byte samples`);
    }
    for (const k of ['raw_mb_per_s', 'holdfast_tcp_mb_per_s', 'first_byte_ms']) assert.ok((last[k] as number) > 0, `${k}: ${last[k]}`);
    if (socat) assert.ok((last.socat_mb_per_s as number) > 0, `socat_mb_per_s: ${last.socat_mb_per_s}`);
    if (ssh) {
      assert.ok((last.ssh_mb_per_s as number) > 0, `ssh_mb_per_s: ${last.ssh_mb_per_s}`);
      assert.match(stdout, /\| holdfast-tcp \| \d+ \(\d+\.\d\d×\)/, 'ratios to ssh -L');
    }
    assert.is(last.holdfast_http_mb_per_s, null, 'holdfast-http did not run');
    assert.ok(existsSync(join(out, 'forward.md')), 'forward.md written to --out');
    assert.equal(readdirSync(tmp), [], 'the run removed its temporary directories');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('without socat and ssh on PATH their rows are skipped, saying what to install', () => {
  const out = mkdtempSync(join(tmpdir(), 'hf-fwd-skip-'));
  try {
    const { stdout, last } = bench(['--rows', 'raw,socat,ssh', '--mib', '0.25', '--first-byte', '1'], { PATH: join(out, 'empty') }, out);
    assert.match(stdout, /socat \.\.\. .*skipped: socat is not installed \(Debian: apt-get install socat/);
    assert.match(stdout, /ssh \.\.\. .*skipped: .*not installed \(Debian: apt-get install openssh-server openssh-client/);
    assert.match(stdout, /\| socat \| skipped \| skipped \| skipped \| skipped \|/);
    assert.is(last.socat_mb_per_s, null);
    assert.is(last.ssh_mb_per_s, null);
    assert.ok((last.raw_mb_per_s as number) > 0);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
