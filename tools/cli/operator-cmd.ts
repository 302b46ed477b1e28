/**
 * `holdfast operator add NAME --role R --data DIR` and `holdfast operator list --data DIR`: the
 * operators of the gateway's web console and API, kept in DIR/holdfast.db. This is how the first
 * admin comes to exist; adding an operator is written to the audit log (actor `cli:USER`).
 *
 * The password comes from the first line of --password-file (a file only its owner may read, like
 * key files), else from stdin: typed without echo at a terminal (twice), or the first line of what
 * is piped in. It never goes on the command line, where `ps` would show it.
 */
import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { ErrorCode, hfError, isHfError } from '../../firmware/errors';
import { AuditLog } from '../../targets/host/gateway/manage/audit';
import { openStore } from '../../targets/host/gateway/manage/db';
import { isRole, Operators, ROLES } from '../../targets/host/gateway/manage/operators';
import { type Flag, parseArgs, usage } from './args';
import { checkSecretFile, INSECURE_KEY_FILE_FLAG } from './key';

/** --data: where the gateway keeps holdfast.db (shared by `operator` and `audit`). */
export const DATA_FLAG: Flag = { name: 'data', meta: 'DIR', help: "the gateway's data directory, holding holdfast.db (required)" };

const ADD_FLAGS: Flag[] = [
  { name: 'role', meta: ROLES.join('|'), help: 'viewer: look; operator: also run and cancel jobs; admin: also operators, devices and keys (required)' },
  { ...DATA_FLAG, help: "the gateway's data directory, holding holdfast.db (required; created, mode 700, when missing)" },
  { name: 'password-file', meta: 'FILE', help: 'the password is the first line of FILE (mode 600: refused if group or others may read it); without it, read from stdin' },
  INSECURE_KEY_FILE_FLAG,
];

const LIST_FLAGS: Flag[] = [DATA_FLAG, { name: 'json', type: 'bool', help: 'one JSON object per operator instead of a table' }];

const SUBCOMMANDS = `usage: holdfast operator <add|list> [flags]   (holdfast operator <add|list> --help for its flags)

  add NAME --role R --data DIR   add an operator (the first admin, too); the password from --password-file or stdin
  list --data DIR                the operators, their roles, when they were added
`;

/** Longest password input read, bytes (a password file or stdin that is really something else). */
const MAX_INPUT = 64 * 1024;

/** Who ran the command, for the audit log. */
function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** The first line of `text`, without its line end. */
function firstLine(text: string): string {
  const i = text.search(/\r?\n/);
  return i < 0 ? text : text.slice(0, i);
}

/** The first line of the password file `file` (mode-checked as key files are; `warn` gets the warning when --insecure-key-file let a loose one through). */
export function passwordFromFile(file: string, insecure: boolean, warn: (m: string) => void): string {
  const loose = checkSecretFile('password-file', file, insecure);
  if (loose !== null) warn(loose);
  let text: string;
  try {
    if (!statSync(file).isFile()) throw hfError(ErrorCode.OPTION, `--password-file ${file}: not a file`);
    if (statSync(file).size > MAX_INPUT) throw hfError(ErrorCode.OPTION, `--password-file ${file}: larger than ${MAX_INPUT} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (isHfError(e)) throw e;
    throw hfError(ErrorCode.OPTION, `--password-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
  }
  const pw = firstLine(text);
  if (pw.length === 0) throw hfError(ErrorCode.OPTION, `--password-file ${file}: the first line is empty`);
  return pw;
}

/** The first line of what is piped into stdin. */
export async function passwordFromPipe(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n > MAX_INPUT) throw hfError(ErrorCode.OPTION, `stdin: more than ${MAX_INPUT} bytes; the password is its first line`);
  }
  const pw = firstLine(Buffer.concat(chunks).toString('utf8'));
  if (pw.length === 0) throw hfError(ErrorCode.OPTION, 'no password: give --password-file FILE, or the password on stdin');
  return pw;
}

/** One line typed at the terminal without echo. */
export function readHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolve, reject) => {
    let s = '';
    const finish = (e?: Error): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (e) reject(e);
      else resolve(s);
    };
    const onData = (d: string): void => {
      for (const ch of d) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(hfError(ErrorCode.OPTION, 'cancelled at the password prompt'));
        if (ch === '\u007f' || ch === '\b') s = [...s].slice(0, -1).join('');
        else s += ch;
      }
    };
    process.stderr.write(prompt);
    input.setEncoding('utf8');
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}

async function passwordFromTerminal(name: string): Promise<string> {
  const a = await readHidden(`password for ${name}: `);
  if (a.length === 0) throw hfError(ErrorCode.OPTION, 'no password typed');
  const b = await readHidden('again: ');
  if (a !== b) throw hfError(ErrorCode.OPTION, 'the two passwords typed differ');
  return a;
}

async function add(argv: string[]): Promise<number> {
  const { values: v, help, rest } = parseArgs(argv, ADD_FLAGS);
  if (help) {
    process.stdout.write(
      usage('holdfast operator add NAME --role viewer|operator|admin --data DIR [--password-file FILE]', 'Adds an operator of the web console and API (recorded in the audit log).', ADD_FLAGS),
    );
    return 0;
  }
  if (rest.length !== 1) throw hfError(ErrorCode.OPTION, rest.length === 0 ? 'operator add needs a NAME' : `operator add takes one NAME, got ${rest.length}: ${rest.join(' ')}`);
  const name = rest[0];
  if (v.role === undefined) throw hfError(ErrorCode.OPTION, `--role ${ROLES.join('|')} is required`);
  if (!isRole(v.role)) throw hfError(ErrorCode.OPTION, `--role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(v.role)}`);
  const role = v.role;
  if (typeof v.data !== 'string') throw hfError(ErrorCode.OPTION, '--data DIR is required');
  const password =
    typeof v['password-file'] === 'string'
      ? passwordFromFile(v['password-file'], v['insecure-key-file'] === true, (m) => process.stderr.write(`holdfast operator: warning: ${m}\n`))
      : process.stdin.isTTY
        ? await passwordFromTerminal(name)
        : await passwordFromPipe();
  const db = openStore(v.data);
  try {
    const ops = new Operators(db);
    const audit = new AuditLog(db);
    const op = await ops.add(name, role, password, (o) => audit.append({ actor: cliActor(), action: 'operator.add', target: o.name, detail: { role: o.role } }));
    process.stdout.write(`operator ${op.name} added (${op.role}) in ${v.data}\n`);
  } finally {
    db.close();
  }
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const { values: v, help, rest } = parseArgs(argv, LIST_FLAGS);
  if (help) {
    process.stdout.write(usage('holdfast operator list --data DIR [--json]', 'Lists the operators of the web console and API.', LIST_FLAGS));
    return 0;
  }
  if (rest.length > 0) throw hfError(ErrorCode.OPTION, `operator list takes no arguments, got ${rest.join(' ')}`);
  if (typeof v.data !== 'string') throw hfError(ErrorCode.OPTION, '--data DIR is required');
  const db = openStore(v.data, { create: false });
  try {
    const all = new Operators(db).list();
    if (v.json === true) {
      for (const o of all)
        process.stdout.write(
          `${JSON.stringify({ name: o.name, role: o.role, created: new Date(o.createdAt).toISOString(), disabled: o.disabledAt === null ? null : new Date(o.disabledAt).toISOString() })}\n`,
        );
      return 0;
    }
    if (all.length === 0) {
      process.stdout.write('no operators yet (holdfast operator add NAME --role admin --data DIR)\n');
      return 0;
    }
    const w = Math.max(4, ...all.map((o) => o.name.length)) + 2;
    process.stdout.write(`${'NAME'.padEnd(w)}${'ROLE'.padEnd(10)}ADDED\n`);
    for (const o of all)
      process.stdout.write(`${o.name.padEnd(w)}${o.role.padEnd(10)}${new Date(o.createdAt).toISOString()}${o.disabledAt === null ? '' : `  (disabled ${new Date(o.disabledAt).toISOString()})`}\n`);
  } finally {
    db.close();
  }
  return 0;
}

export async function operatorCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(SUBCOMMANDS);
    return 0;
  }
  if (sub === 'add') return add(rest);
  if (sub === 'list') return list(rest);
  throw hfError(ErrorCode.OPTION, sub === undefined ? 'operator needs add or list (holdfast operator --help)' : `unknown operator subcommand ${JSON.stringify(sub)}: add or list`);
}
