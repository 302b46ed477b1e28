/**
 * `holdfast operator` and `holdfast audit` against the real CLI (bin/holdfast) in a temp directory:
 * the first admin added with the password on stdin, another from a --password-file (a file others
 * may read refused, as key files are), both listed and audited; bad input each a one-line
 * HF_ERR_OPTION with exit 2; audit verify exit 0 with the head, export lines that parse; after the
 * file is tampered with, verify exits 1 naming the entry (HF_ERR_AUDIT); a database from a newer
 * holdfast refused (HF_ERR_SCHEMA, exit 1). Every flag shows in --help.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { CLI, ROOT } from './support/host';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-operator-cli-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const data = path.join(tmp, 'data');

function cli(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string, mode: number): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode);
  return f;
}

test('the first admin: password on stdin; the data directory (0700) and holdfast.db (0600) made', () => {
  const r = cli(['operator', 'add', 'ada', '--role', 'admin', '--data', data], 'correct horse battery\n');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `operator ada added (admin) in ${data}\n`);
  assert.is(fs.statSync(data).mode & 0o777, 0o700);
  assert.is(fs.statSync(path.join(data, 'holdfast.db')).mode & 0o777, 0o600);
});

test('a password file: mode 600 taken; one others may read refused unless --insecure-key-file (then a warning)', () => {
  const loose = file('loose.txt', 'battery staple\n', 0o644);
  const r = cli(['operator', 'add', 'olga', '--role', 'operator', '--data', data, '--password-file', loose]);
  assert.is(r.status, 2);
  assert.is(r.stderr, `holdfast operator: HF_ERR_OPTION: --password-file ${loose}: mode 0644, group or others may read it (bits 0044); fix: chmod 600 ${loose} (or give --insecure-key-file)\n`);
  const ok = cli(['operator', 'add', 'olga', '--role', 'operator', '--data', data, '--password-file', loose, '--insecure-key-file']);
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /^holdfast operator: warning: --password-file \S+ mode 0644/);
  const tight = file('tight.txt', 'a viewer password\r\nsecond line\n', 0o600);
  const v = cli(['operator', 'add', 'vic', '--role', 'viewer', '--data', data, '--password-file', tight]);
  assert.is(v.status, 0, v.stderr);
  assert.is(v.stderr, '');
});

test('operator list: a table, or JSON lines', () => {
  const r = cli(['operator', 'list', '--data', data]);
  assert.is(r.status, 0, r.stderr);
  const rows = r.stdout.trim().split('\n');
  assert.match(rows[0], /^NAME\s+ROLE\s+ADDED$/);
  assert.equal(
    rows.slice(1).map((l) => l.split(/\s+/).slice(0, 2)),
    [
      ['ada', 'admin'],
      ['olga', 'operator'],
      ['vic', 'viewer'],
    ],
  );
  const j = cli(['operator', 'list', '--data', data, '--json']);
  const ops = j.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(
    ops.map((o) => [o.name, o.role, o.disabled]),
    [
      ['ada', 'admin', null],
      ['olga', 'operator', null],
      ['vic', 'viewer', null],
    ],
  );
  assert.ok(ops.every((o) => !Number.isNaN(Date.parse(o.created))));
});

const BAD: [string, string[], string, RegExp][] = [
  ['a name taken', ['operator', 'add', 'ada', '--role', 'viewer', '--data', data], 'another password\n', /^holdfast operator: HF_ERR_OPTION: operator ada exists$/],
  ['no name', ['operator', 'add', '--role', 'viewer', '--data', data], 'x\n', /^holdfast operator: HF_ERR_OPTION: operator add needs a NAME$/],
  ['a bad name', ['operator', 'add', 'no spaces', '--role', 'viewer', '--data', data], 'long enough\n', /^holdfast operator: HF_ERR_OPTION: operator name "no spaces": /],
  ['no role', ['operator', 'add', 'bob', '--data', data], 'long enough\n', /^holdfast operator: HF_ERR_OPTION: --role viewer\|operator\|admin is required$/],
  ['a bad role', ['operator', 'add', 'bob', '--role', 'root', '--data', data], 'long enough\n', /^holdfast operator: HF_ERR_OPTION: --role must be one of viewer, operator, admin, got "root"$/],
  ['no --data', ['operator', 'add', 'bob', '--role', 'viewer'], 'long enough\n', /^holdfast operator: HF_ERR_OPTION: --data DIR is required$/],
  ['a short password', ['operator', 'add', 'bob', '--role', 'viewer', '--data', data], 'short\n', /^holdfast operator: HF_ERR_OPTION: the password has 5 characters, fewer than minPasswordLength 8$/],
  ['no password', ['operator', 'add', 'bob', '--role', 'viewer', '--data', data], '', /^holdfast operator: HF_ERR_OPTION: no password: give --password-file FILE, or the password on stdin$/],
  [
    'a missing password file',
    ['operator', 'add', 'bob', '--role', 'viewer', '--data', data, '--password-file', path.join(tmp, 'none')],
    '',
    /^holdfast operator: HF_ERR_OPTION: --password-file \S+none: ENOENT$/,
  ],
  ['an unknown flag', ['operator', 'list', '--data', data, '--all'], '', /^holdfast operator: HF_ERR_OPTION: unknown flag --all$/],
  ['no subcommand', ['operator'], '', /^holdfast operator: HF_ERR_OPTION: operator needs add or list/],
  ['an unknown subcommand', ['audit', 'repair', '--data', data], '', /^holdfast audit: HF_ERR_OPTION: unknown audit subcommand "repair": verify or export$/],
  ['no database there', ['audit', 'verify', '--data', path.join(tmp, 'empty')], '', /^holdfast audit: HF_ERR_OPTION: --data \S+empty: no holdfast\.db there$/],
  ['a bad --from', ['audit', 'export', '--data', data, '--from', '0'], '', /^holdfast audit: HF_ERR_OPTION: --from must be an entry number 1 or more, got 0$/],
];

for (const [name, args, input, line] of BAD) {
  test(`bad input, one line and exit 2: ${name}`, () => {
    const r = cli(args, input);
    assert.is(r.status, 2, r.stderr);
    assert.is(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    assert.match(r.stderr.trimEnd(), line);
    assert.is(r.stdout, '');
  });
}

test('nothing of the refused ones was added; three entries in the audit log, chain intact', () => {
  const r = cli(['operator', 'list', '--data', data, '--json']);
  assert.is(r.stdout.trim().split('\n').length, 3);
  const v = cli(['audit', 'verify', '--data', data]);
  assert.is(v.status, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^audit log ${data}/holdfast\\.db: 3 entries, chain intact\\nhead: seq 3 sha256 [0-9a-f]{64}\\n$`));
});

test('audit export: one JSON object a line, each operator added by cli:USER', () => {
  const r = cli(['audit', 'export', '--data', data]);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const entries = lines.map((l) => JSON.parse(l));
  assert.equal(
    entries.map((e) => [e.seq, e.action, e.target, e.detail]),
    [
      [1, 'operator.add', 'ada', { role: 'admin' }],
      [2, 'operator.add', 'olga', { role: 'operator' }],
      [3, 'operator.add', 'vic', { role: 'viewer' }],
    ],
  );
  assert.ok(entries.every((e) => /^cli(:.+)?$/.test(e.actor)));
  const head = /sha256 ([0-9a-f]{64})/.exec(cli(['audit', 'verify', '--data', data]).stdout)?.[1];
  assert.is(entries[2].hash, head);
  assert.equal(
    cli(['audit', 'export', '--data', data, '--from', '3'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l).seq),
    [3],
  );
});

test('tampered with: audit verify exits 1 naming the entry (HF_ERR_AUDIT); --json says the same', () => {
  const db = new Database(path.join(data, 'holdfast.db'));
  db.exec('DROP TRIGGER audit_no_update; UPDATE audit SET detail = \'{"role":"viewer"}\' WHERE seq = 1;');
  db.close();
  const r = cli(['audit', 'verify', '--data', data]);
  assert.is(r.status, 1);
  assert.is(r.stderr, `holdfast audit: HF_ERR_AUDIT: ${data}/holdfast.db: entry 1 was changed: its hash does not match its content\n`);
  const j = cli(['audit', 'verify', '--data', data, '--json']);
  assert.is(j.status, 1);
  const v = JSON.parse(j.stdout);
  assert.equal([v.ok, v.seq, v.problem], [false, 1, 'changed']);
});

test('a database from a newer holdfast: refused with HF_ERR_SCHEMA, exit 1', () => {
  const db = new Database(path.join(data, 'holdfast.db'));
  db.prepare("INSERT INTO schema_migrations (version, about, applied_at) VALUES (99, 'newer', '')").run();
  db.close();
  const r = cli(['operator', 'list', '--data', data]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /^holdfast operator: HF_ERR_SCHEMA: \S+holdfast\.db is at schema version 99, this holdfast knows versions up to \d+: /);
});

test('--help: every flag of every subcommand; the command list names operator and audit', () => {
  const flags: Record<string, string[]> = {
    'operator add': ['--role', '--data', '--password-file', '--insecure-key-file', '--help'],
    'operator list': ['--data', '--json', '--help'],
    'audit verify': ['--data', '--json', '--help'],
    'audit export': ['--data', '--from', '--help'],
  };
  for (const [cmd, names] of Object.entries(flags)) {
    const r = cli([...cmd.split(' '), '--help']);
    assert.is(r.status, 0, cmd);
    for (const f of names) assert.match(r.stdout, new RegExp(`^  ${f}\\b`, 'm'), `${cmd} --help shows ${f}`);
  }
  for (const cmd of ['operator', 'audit']) {
    const r = cli([cmd, '--help']);
    assert.is(r.status, 0);
    assert.match(r.stdout, new RegExp(`^usage: holdfast ${cmd} `));
  }
  const top = cli(['--help']);
  assert.match(top.stdout, /^ {2}operator +add and list the operators/m);
  assert.match(top.stdout, /^ {2}audit +verify the gateway's audit log/m);
});

test.run();
