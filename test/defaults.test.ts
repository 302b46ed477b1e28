/**
 * One source for each default: the defaults objects (LINK_DEFAULTS, built from WIRE_DEFAULTS,
 * RTT_DEFAULTS and RING_DEFAULTS; LADDER_DEFAULTS; MUX_LIMIT_DEFAULTS; GATEWAY_LINK_DEFAULTS;
 * TCP_LIMIT_DEFAULTS; WORKER_LIMIT_DEFAULTS; the gateway store's STORE_DEFAULTS, AUDIT_DEFAULTS, PASSWORD_DEFAULTS,
 * OPERATOR_DEFAULTS, SESSION_DEFAULTS and LOGIN_LIMIT_DEFAULTS; the launcher's LAUNCHER_DEFAULTS). Every
 * number written elsewhere is read back here and compared with them:
 *   - the "(default N)" in the JSDoc of each option interface;
 *   - docs/PROTOCOL.md section 10's table of options (defaults, integer ranges) and its sentences
 *     about the defaults;
 *   - every "default N" / "N by default" next to a `name` in the docs;
 *   - the CLI's link flags, and the gateway's sizing note.
 * A doc that disagrees with the code fails here, naming the file, the option and both numbers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LADDER_DEFAULTS } from '../firmware/ladder';
import { COMMAND_JOURNAL_DEFAULTS } from '../firmware/manage/command-journal';
import { EXECUTOR_DEFAULTS } from '../firmware/manage/executor';
import { DEVICE_JOB_DEFAULTS } from '../firmware/manage/job-state';
import { DEFAULT_MAX_ITEM_BYTES } from '../firmware/manage/items';
import { MANAGE_DEFAULTS } from '../firmware/manage/ops';
import { MUX_LIMIT_DEFAULTS } from '../firmware/mux-frame';
import { ACK_AFTER_DEFAULT, LINK_DEFAULTS, type ResolvedOptions, checkAckAfter, resolveOptions } from '../firmware/options';
import { RING_DEFAULTS } from '../firmware/out-ring';
import { RTT_DEFAULTS } from '../firmware/rtt';
import { WIRE_DEFAULTS, headerBudget } from '../firmware/wire';
import { GATEWAY_LINK_DEFAULTS } from '../targets/host/gateway/gateway';
import { TCP_LIMIT_DEFAULTS } from '../targets/host/gateway/tcp-front';
import { WORKER_LIMIT_DEFAULTS } from '../targets/host/gateway/workers/main';
import { LINK_FLAGS } from '../tools/cli/common';
import { TCP_LIMIT_FLAGS } from '../tools/cli/gateway-cmd';
import { RESTART_DEFAULTS, STATUS_DEFAULTS } from '../tools/cli/device-cmd';
import { FAILURE_LOG_DEFAULTS } from '../targets/host/device/failure-log';
import { REFUSAL_LOG_DEFAULTS } from '../targets/host/gateway/refusal-log';
import { STORE_DEFAULTS } from '../targets/host/gateway/manage/db';
import { AUDIT_DEFAULTS } from '../targets/host/gateway/manage/audit';
import { PASSWORD_DEFAULTS } from '../targets/host/gateway/manage/passwords';
import { OPERATOR_DEFAULTS } from '../targets/host/gateway/manage/operators';
import { SESSION_DEFAULTS } from '../targets/host/gateway/manage/sessions';
import { MANAGE_SERVICE_DEFAULTS } from '../targets/host/gateway/manage/service';
import { SSE_DEFAULTS } from '../targets/host/gateway/manage/sse';
import { EVENT_STREAM_DEFAULTS } from '../tools/cli/ctl-events';
import { FOLLOW_DEFAULTS } from '../tools/cli/ctl-follow';
import { MANAGE_SERVER_DEFAULTS } from '../targets/host/device/manage-server';
import { LOGIN_LIMIT_DEFAULTS } from '../targets/host/gateway/manage/login-limiter';
import { LAUNCHER_DEFAULTS } from '../targets/host/device/launcher';
import { code } from './support/errors';

const root = join(__dirname, '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');
type Numbers = Readonly<Record<string, number>>;

const UNITS: Record<string, number> = { KiB: 1024, MiB: 1 << 20, GiB: 1 << 30, ms: 1, s: 1000 };

/**
 * The amount at the start of `text`: "262144", "60 000", "2^32-1", "1 MiB", "20 s" (seconds only for
 * an option in ms, `name` ending in Ms). null if it does not start with one.
 */
function amountAt(text: string, name: string): number | null {
  const m = /^(?:2\^(\d+)(?:-(\d+))?|(\d{1,3}(?:[ _]\d{3})+|\d+))(?: ?(KiB|MiB|GiB|ms|s)\b)?/.exec(text);
  if (m === null) return null;
  const n = m[1] !== undefined ? 2 ** Number(m[1]) - Number(m[2] ?? 0) : Number(m[3].replace(/[ _]/g, ''));
  const unit = m[4];
  if (unit === undefined || unit === 'ms') return n;
  if (unit === 's' && !name.endsWith('Ms')) return null;
  return n * UNITS[unit];
}

interface Documented {
  file: string;
  name: string;
  /** The default the JSDoc states, or null when it states none as a number. */
  value: number | null;
  doc: string;
}

/** The properties of `export interface <iface>` in `file` with their JSDoc's "(default ...)". */
function documented(file: string, iface: string): Documented[] {
  const text = read(file);
  const start = text.indexOf(`export interface ${iface} `);
  assert.ok(start >= 0, `${file}: interface ${iface} not found`);
  const end = text.indexOf('\n}', start);
  const body = text.slice(start, end);
  const out: Documented[] = [];
  const prop = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*(\w+)\??:/g;
  for (let m = prop.exec(body); m !== null; m = prop.exec(body)) {
    const doc = m[1].replace(/\s*\n\s*\*\s?/g, ' ').trim();
    const name = m[2];
    const d = /\(default:?\s+/.exec(doc);
    out.push({ file, name, doc, value: d === null ? null : amountAt(doc.slice(d.index + d[0].length), name) });
  }
  assert.ok(out.length > 0, `${file}: no documented properties in ${iface}`);
  return out;
}

/** Checks every documented default of the interfaces against `object`; every key of it must be documented. */
function checkJsdoc(what: string, object: Numbers, sources: [file: string, iface: string][]): void {
  const seen = new Set<string>();
  for (const [file, iface] of sources) {
    for (const d of documented(file, iface)) {
      if (!(d.name in object)) continue;
      if (d.value === null) continue;
      seen.add(d.name);
      assert.is(d.value, object[d.name], `${d.file}: ${iface}.${d.name} says "${d.doc}", ${what}.${d.name} is ${object[d.name]}`);
    }
  }
  for (const k of Object.keys(object)) assert.ok(seen.has(k), `${what}.${k} has no "(default N)" in the JSDoc of ${sources.map((s) => s[1]).join(' / ')}`);
}

test('JSDoc defaults of the link options, wire limits, RTT bounds and rings are the defaults objects', () => {
  checkJsdoc('LINK_DEFAULTS', LINK_DEFAULTS, [
    ['firmware/options.ts', 'LinkOptions'],
    ['firmware/wire.ts', 'WireLimits'],
    ['firmware/rtt.ts', 'RttOptions'],
  ]);
  checkJsdoc('WIRE_DEFAULTS', WIRE_DEFAULTS, [['firmware/wire.ts', 'WireLimits']]);
  checkJsdoc('RTT_DEFAULTS', RTT_DEFAULTS, [['firmware/rtt.ts', 'RttOptions']]);
  checkJsdoc('RING_DEFAULTS', RING_DEFAULTS, [['firmware/out-ring.ts', 'RingOptions']]);
  checkJsdoc('LADDER_DEFAULTS', LADDER_DEFAULTS, [['firmware/ladder.ts', 'LadderOptions']]);
  checkJsdoc('MUX_LIMIT_DEFAULTS', MUX_LIMIT_DEFAULTS, [['firmware/mux-frame.ts', 'MuxLimits']]);
  checkJsdoc('TCP_LIMIT_DEFAULTS', TCP_LIMIT_DEFAULTS, [['targets/host/gateway/tcp-front.ts', 'TcpLimits']]);
  checkJsdoc('WORKER_LIMIT_DEFAULTS', WORKER_LIMIT_DEFAULTS, [['targets/host/gateway/workers/main.ts', 'WorkerLimits']]);
  checkJsdoc('FAILURE_LOG_DEFAULTS', FAILURE_LOG_DEFAULTS, [['targets/host/device/failure-log.ts', 'FailureLogOptions']]);
  checkJsdoc('RESTART_DEFAULTS', RESTART_DEFAULTS, [['tools/cli/device-cmd.ts', 'RestartOptions']]);
  checkJsdoc('STATUS_DEFAULTS', STATUS_DEFAULTS, [['tools/cli/device-cmd.ts', 'StatusOptions']]);
  checkJsdoc('REFUSAL_LOG_DEFAULTS', REFUSAL_LOG_DEFAULTS, [['targets/host/gateway/refusal-log.ts', 'RefusalLogOptions']]);
  checkJsdoc('MANAGE_DEFAULTS', MANAGE_DEFAULTS, [['firmware/manage/ops.ts', 'ManageLimits']]);
  checkJsdoc('MANAGE_SERVICE_DEFAULTS', MANAGE_SERVICE_DEFAULTS as unknown as Numbers, [['targets/host/gateway/manage/service.ts', 'ManageServiceOptions']]);
  checkJsdoc('SSE_DEFAULTS', SSE_DEFAULTS as unknown as Numbers, [['targets/host/gateway/manage/sse.ts', 'SseOptions']]);
  checkJsdoc('FOLLOW_DEFAULTS', FOLLOW_DEFAULTS as unknown as Numbers, [['tools/cli/ctl-follow.ts', 'FollowOptions']]);
  checkJsdoc('EVENT_STREAM_DEFAULTS', EVENT_STREAM_DEFAULTS as unknown as Numbers, [['tools/cli/ctl-events.ts', 'EventStreamOptions']]);
  checkJsdoc('MANAGE_SERVER_DEFAULTS', MANAGE_SERVER_DEFAULTS, [['targets/host/device/manage-server.ts', 'ManageServerOptions']]);
  checkJsdoc('COMMAND_JOURNAL_DEFAULTS', COMMAND_JOURNAL_DEFAULTS, [['firmware/manage/command-journal.ts', 'CommandJournalOptions']]);
  checkJsdoc('EXECUTOR_DEFAULTS', EXECUTOR_DEFAULTS, [['firmware/manage/executor.ts', 'ExecutorOptions']]);
  checkJsdoc('LAUNCHER_DEFAULTS', LAUNCHER_DEFAULTS, [['targets/host/device/launcher.ts', 'LauncherOptions']]);
  checkJsdoc('DEVICE_JOB_DEFAULTS', DEVICE_JOB_DEFAULTS, [['firmware/manage/job-state.ts', 'DeviceJobOptions']]);
  checkJsdoc('STORE_DEFAULTS', STORE_DEFAULTS, [['targets/host/gateway/manage/db.ts', 'StoreOptions']]);
  checkJsdoc('AUDIT_DEFAULTS', AUDIT_DEFAULTS, [['targets/host/gateway/manage/audit.ts', 'AuditOptions']]);
  checkJsdoc('PASSWORD_DEFAULTS', PASSWORD_DEFAULTS, [['targets/host/gateway/manage/passwords.ts', 'PasswordOptions']]);
  checkJsdoc('OPERATOR_DEFAULTS', OPERATOR_DEFAULTS, [['targets/host/gateway/manage/operators.ts', 'OperatorOptions']]);
  checkJsdoc('SESSION_DEFAULTS', SESSION_DEFAULTS, [['targets/host/gateway/manage/sessions.ts', 'SessionOptions']]);
  checkJsdoc('LOGIN_LIMIT_DEFAULTS', LOGIN_LIMIT_DEFAULTS, [['targets/host/gateway/manage/login-limiter.ts', 'LoginLimitOptions']]);
});

test('the rings alone and the link have one ring size', () => {
  assert.is(LINK_DEFAULTS.outSlots, RING_DEFAULTS.slots);
  assert.is(LINK_DEFAULTS.inSlots, RING_DEFAULTS.slots);
  assert.is(LINK_DEFAULTS.outBytes, RING_DEFAULTS.bytes);
  assert.is(LINK_DEFAULTS.inBytes, RING_DEFAULTS.bytes);
  assert.equal(resolveOptions(), LINK_DEFAULTS, 'resolving no options gives LINK_DEFAULTS itself');
});

/** docs/PROTOCOL.md section 10: rows of [names, defaults, range]. */
function optionTable(): { line: number; names: string[]; defaults: string[]; range: string }[] {
  const lines = read('docs/PROTOCOL.md').split('\n');
  const from = lines.findIndex((l) => l.startsWith('## 10. '));
  assert.ok(from >= 0, 'docs/PROTOCOL.md: section 10 not found');
  const rows = [];
  for (let i = from + 1; i < lines.length && !lines[i].startsWith('## '); i++) {
    if (!lines[i].startsWith('| `')) continue;
    const cells = lines[i]
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    rows.push({ line: i + 1, names: cells[0].split(' / ').map((n) => n.replace(/`/g, '')), defaults: cells[1].split(' / '), range: cells[2] });
  }
  return rows;
}

test('docs/PROTOCOL.md section 10: every link option, its default and its integer range', () => {
  const rows = optionTable();
  const named = new Set<string>();
  for (const r of rows) {
    const at = `docs/PROTOCOL.md:${r.line}`;
    assert.is(r.defaults.length, r.names.length, `${at}: ${r.names.length} options, ${r.defaults.length} defaults`);
    r.names.forEach((name, i) => {
      assert.ok(name in LINK_DEFAULTS, `${at}: ${name} is not a link option`);
      named.add(name);
      const want = LINK_DEFAULTS[name as keyof ResolvedOptions];
      const cell = r.defaults[i];
      const min = /^`min\((\d+), outBytes, inBytes\)`$/.exec(cell);
      if (min !== null) {
        assert.is(name, 'maxMessage', `${at}: only maxMessage defaults to a minimum`);
        assert.is(Number(min[1]), WIRE_DEFAULTS.maxMessage, `${at}: maxMessage's default says min(${min[1]}, ...), WIRE_DEFAULTS.maxMessage is ${WIRE_DEFAULTS.maxMessage}`);
        assert.is(resolveOptions({ outBytes: 1024 }).maxMessage, 1024, `${at}: maxMessage follows a smaller outBytes`);
        assert.is(want, Math.min(Number(min[1]), LINK_DEFAULTS.outBytes, LINK_DEFAULTS.inBytes));
        return;
      }
      const v = amountAt(cell, name);
      assert.ok(v !== null && String(v).length > 0, `${at}: ${name}'s default ${JSON.stringify(cell)} is not a number`);
      assert.is(v, want, `${at}: ${name} default ${cell}, LINK_DEFAULTS.${name} is ${want}`);
    });
    const range = /^(\d+)\.\.(\d+)$/.exec(r.range);
    if (range !== null) {
      const [lo, hi] = [Number(range[1]), Number(range[2])];
      for (const name of r.names) {
        for (const ok of [lo, hi]) assert.is(resolveOptions({ [name]: ok })[name as keyof ResolvedOptions], ok, `${at}: ${name} ${ok} is in ${r.range}`);
        for (const bad of [lo - 1, hi + 1])
          assert.is(
            code(() => resolveOptions({ [name]: bad })),
            'HF_ERR_OPTION',
            `${at}: ${name} ${bad} is outside ${r.range}`,
          );
      }
    }
  }
  for (const k of Object.keys(LINK_DEFAULTS)) assert.ok(named.has(k), `docs/PROTOCOL.md section 10 has no row for ${k}`);
});

test('docs/PROTOCOL.md: the sentences about the defaults', () => {
  const doc = read('docs/PROTOCOL.md').replace(/\s*\n\s*/g, ' ');
  const budget = /with `maxSackRanges = (\d+)` it is (\d+) bytes/.exec(doc);
  assert.ok(budget !== null, 'the headerBudget sentence of section 10');
  assert.is(Number(budget[1]), WIRE_DEFAULTS.maxSackRanges);
  assert.is(Number(budget[2]), headerBudget(WIRE_DEFAULTS));
  const least = /\.\. 2\^30 \((\d+) \.\. 2\^30 with the other defaults\)/.exec(doc);
  assert.ok(least !== null, 'the smallest maxBundleBytes of section 10');
  assert.is(Number(least[1]), headerBudget(LINK_DEFAULTS) + 512 + LINK_DEFAULTS.maxMessage + 16);
  assert.is(
    code(() => resolveOptions({ maxBundleBytes: Number(least[1]) - 1 })),
    'HF_ERR_OPTION',
  );
  assert.is(resolveOptions({ maxBundleBytes: Number(least[1]) }).maxBundleBytes, Number(least[1]));
  const ex = /Default options everywhere, so an empty receive ring advertises `win \[(\d+), (\d+)\]` and the limits are `\[(\d+), (\d+), (\d+), (\d+), (\d+)\]`/.exec(doc);
  assert.ok(ex !== null, 'the defaults sentence of section 12');
  const D = LINK_DEFAULTS;
  assert.equal(ex.slice(1).map(Number), [D.inSlots, D.inBytes, D.maxMessages, D.maxBundleBytes, D.maxMessage, D.maxSackRanges, D.maxControls]);
});

/** Options the docs may name with a default: the defaults objects, then the JSDoc of options kept inline. */
function docDefaults(): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of [
    LINK_DEFAULTS,
    LADDER_DEFAULTS,
    MUX_LIMIT_DEFAULTS,
    TCP_LIMIT_DEFAULTS,
    MANAGE_DEFAULTS,
    EXECUTOR_DEFAULTS,
    LAUNCHER_DEFAULTS,
    MANAGE_SERVICE_DEFAULTS,
    SSE_DEFAULTS,
  ] as unknown as Numbers[])
    for (const [k, v] of Object.entries(o)) m.set(k, v);
  m.set('maxItemBytes', DEFAULT_MAX_ITEM_BYTES); // ItemReader's constructor argument
  const inline: [string, string][] = [
    ['firmware/mux.ts', 'MuxTableOptions'],
    ['firmware/journal.ts', 'JournalOptions'],
    ['targets/host/app/mux.ts', 'MuxOptions'],
    ['targets/host/app/stream.ts', 'ChannelStreamOptions'],
    ['targets/host/app/forward.ts', 'ForwardOptions'],
    ['targets/host/app/forward.ts', 'ServeOptions'],
    ['targets/host/gateway/pair/peer-conn.ts', 'PeerOptions'],
    ['targets/host/gateway/pair/pair.ts', 'PairOptions'],
  ];
  for (const [file, iface] of inline) {
    for (const d of documented(file, iface)) {
      if (d.value === null || m.has(d.name)) continue;
      m.set(d.name, d.value);
    }
  }
  return m;
}

test('docs: every "default N" next to an option name is that option\'s default', () => {
  const known = docDefaults();
  let checked = 0;
  for (const file of ['README.md', 'docs/PROTOCOL.md', 'docs/MUX.md', 'docs/ARCHITECTURE.md']) {
    const text = read(file);
    const phrase = /\bdefault:?\s+(?=\d|2\^)|(?=\b\d+(?: ?(?:KiB|MiB|ms|s))? by default\b)/g;
    for (let m = phrase.exec(text); m !== null; m = phrase.exec(text)) {
      if (m[0] === '') phrase.lastIndex++; // "N by default": the match is where N starts
      const line = text.slice(0, m.index).split('\n').length;
      const at = `${file}:${line}`;
      // The option is the nearest `name` before it in the same paragraph or table cell.
      const before = text.slice(Math.max(0, m.index - 200), m.index);
      const scope = before.slice(Math.max(before.lastIndexOf('\n\n'), before.lastIndexOf('|')) + 1);
      const names = [...scope.matchAll(/`([a-z][A-Za-z0-9]*)`/g)].map((n) => n[1]);
      const name = names[names.length - 1];
      const shown = text.slice(m.index, text.indexOf('\n', m.index)).slice(0, 60);
      assert.ok(name !== undefined, `${at}: "${shown}" is next to no option name`);
      assert.ok(known.has(name), `${at}: "${shown}" is next to \`${name}\`, which has no default in the code`);
      const v = amountAt(text.slice(m.index + m[0].length), name);
      assert.is(v, known.get(name), `${at}: \`${name}\` "${shown}", the code says ${known.get(name)}`);
      checked++;
    }
  }
  assert.ok(checked >= 10, `only ${checked} defaults found in the docs: has the wording changed?`);
});

test('the CLI link flags state the link defaults', () => {
  for (const f of LINK_FLAGS) {
    const name = f.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    assert.ok(name in LINK_DEFAULTS, `--${f.name} is not a link option (${name})`);
    const d = /\(default (\S+?)[,)]/.exec(f.help);
    assert.ok(d !== null, `--${f.name}: its help states no default`);
    assert.is(amountAt(d[1], name), LINK_DEFAULTS[name as keyof ResolvedOptions], `--${f.name}: "${f.help}"`);
  }
});

/** Bytes a session reserves up front (see Endpoint's constructor: two slabs, the wrap scratch, the bundle buffer). */
function reserved(o: ResolvedOptions): number {
  return o.outBytes + o.inBytes + Math.min(o.inBytes, o.maxMessage) + o.maxBundleBytes;
}

test("the gateway's TCP limit flags state TCP_LIMIT_DEFAULTS", () => {
  let n = 0;
  for (const f of TCP_LIMIT_FLAGS) {
    const name = f.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const d = /\(default (\S+?)[,)]/.exec(f.help);
    assert.ok(d !== null, `--${f.name}: its help states no default`);
    if (name === 'maxConnections') continue; // the gateway's own option, not a TcpLimits bound
    assert.ok(name in TCP_LIMIT_DEFAULTS, `--${f.name} is not a TcpLimits bound (${name})`);
    assert.is(amountAt(d[1], name), TCP_LIMIT_DEFAULTS[name as keyof typeof TCP_LIMIT_DEFAULTS], `--${f.name}: "${f.help}"`);
    n++;
  }
  assert.is(n, Object.keys(TCP_LIMIT_DEFAULTS).length, 'a flag for every bound');
});

test("the gateway's sizing note states GATEWAY_LINK_DEFAULTS", () => {
  const text = read('targets/host/gateway/gateway.ts');
  const end = text.indexOf('export const GATEWAY_LINK_DEFAULTS');
  assert.ok(end >= 0, 'GATEWAY_LINK_DEFAULTS not found');
  const note = text.slice(text.lastIndexOf('/**', end), end).replace(/\s*\n\s*\*\s?/g, ' ');
  const g = resolveOptions(GATEWAY_LINK_DEFAULTS);
  const kib = (re: RegExp, what: string): number => {
    const m = re.exec(note);
    assert.ok(m !== null, `gateway.ts: the note on GATEWAY_LINK_DEFAULTS no longer says ${what} (${re})`);
    return Number(m[1]);
  };
  assert.is(kib(/a (\d+) KiB window each way/, 'the window') * 1024, g.inBytes);
  assert.is(g.outBytes, g.inBytes);
  const slots = kib(/window each way \((\d+) messages\)/, 'the window in messages');
  assert.is(slots, g.inSlots);
  assert.is(slots, g.outSlots);
  assert.is(kib(/messages up to (\d+) KiB/, 'the largest message') * 1024, g.maxMessage);
  assert.is(kib(/bundles up to (\d+) KiB/, 'the largest bundle') * 1024, g.maxBundleBytes);
  assert.is(kib(/(\d+) KiB reserved a session/, "a session's reservation") * 1024, reserved(g));
  assert.is(kib(/a device's defaults reserve (\d+) KiB/, "a device's reservation") * 1024, reserved(LINK_DEFAULTS));
});

test('ackAfter: one default, and every place that names it agrees', () => {
  assert.is(checkAckAfter(undefined), ACK_AFTER_DEFAULT);
  for (const file of ['firmware/client-link.ts', 'targets/host/gateway/gateway.ts', 'targets/host/device/device.ts']) {
    const m = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*ackAfter\?:/.exec(read(file));
    assert.ok(m !== null, `${file}: an ackAfter option with JSDoc`);
    const d = /\(default '(\w+)'/.exec(m?.[1] ?? '');
    assert.is(d?.[1], ACK_AFTER_DEFAULT, `${file}: the default its JSDoc names`);
  }
  const flag = /name: 'ack-after'[\s\S]*?help: `[^`]*once received \(default\)/.test(read('tools/cli/common.ts'));
  assert.ok(flag && ACK_AFTER_DEFAULT === 'received', '--ack-after help names received as the default');
  assert.ok(read('docs/PROTOCOL.md').includes(`- \`${ACK_AFTER_DEFAULT}\` (the default)`), 'PROTOCOL.md 6 names the default');
});

test.run();
