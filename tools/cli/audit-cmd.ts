/**
 * `holdfast audit verify --data DIR` and `holdfast audit export --data DIR`: the gateway's audit log
 * (DIR/holdfast.db). verify walks the hash chain: exit 0 and the head (seq and hash: copy it
 * somewhere else, to check later that the log was not rewritten up to there), or exit 1 naming the
 * first entry changed, removed, inserted or reordered (HF_ERR_AUDIT). export writes one JSON object
 * per entry, in order, to stdout.
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import { AuditLog } from '../../targets/host/gateway/manage/audit';
import { DB_FILE, openStore } from '../../targets/host/gateway/manage/db';
import { type Flag, parseArgs, usage } from './args';
import { DATA_FLAG } from './operator-cmd';

const VERIFY_FLAGS: Flag[] = [DATA_FLAG, { name: 'json', type: 'bool', help: 'print the verdict as one JSON object (exit status as without it)' }];
const EXPORT_FLAGS: Flag[] = [DATA_FLAG, { name: 'from', type: 'number', meta: 'SEQ', help: 'start at entry SEQ (default 1)' }];

const SUBCOMMANDS = `usage: holdfast audit <verify|export> [flags]   (holdfast audit <verify|export> --help for its flags)

  verify --data DIR   check the hash chain: exit 0 and the head, or 1 naming the first bad entry
  export --data DIR   every entry as one JSON object a line, to stdout
`;

function dataDir(v: Record<string, unknown>, rest: string[], sub: string): string {
  if (rest.length > 0) throw hfError(ErrorCode.OPTION, `audit ${sub} takes no arguments, got ${rest.join(' ')}`);
  if (typeof v.data !== 'string') throw hfError(ErrorCode.OPTION, '--data DIR is required');
  return v.data;
}

async function verify(argv: string[]): Promise<number> {
  const { values: v, help, rest } = parseArgs(argv, VERIFY_FLAGS);
  if (help) {
    process.stdout.write(
      usage('holdfast audit verify --data DIR [--json]', "Checks the audit log's hash chain: exit 0 and its head, or 1 naming the first entry changed, removed, inserted or reordered.", VERIFY_FLAGS),
    );
    return 0;
  }
  const dir = dataDir(v, rest, 'verify');
  const db = openStore(dir, { create: false });
  let verdict: ReturnType<AuditLog['verify']>;
  try {
    verdict = new AuditLog(db).verify();
  } finally {
    db.close();
  }
  if (v.json === true) {
    process.stdout.write(`${JSON.stringify(verdict)}\n`);
    return verdict.ok ? 0 : 1;
  }
  if (!verdict.ok) throw hfError(ErrorCode.AUDIT, `${dir}/${DB_FILE}: ${verdict.message}`);
  process.stdout.write(`audit log ${dir}/${DB_FILE}: ${verdict.count} ${verdict.count === 1 ? 'entry' : 'entries'}, chain intact\nhead: seq ${verdict.head.seq} sha256 ${verdict.head.hash}\n`);
  return 0;
}

async function exportLog(argv: string[]): Promise<number> {
  const { values: v, help, rest } = parseArgs(argv, EXPORT_FLAGS);
  if (help) {
    process.stdout.write(
      usage('holdfast audit export --data DIR [--from SEQ]', 'Writes the audit log to stdout, one JSON object per entry: seq, at, actor, action, target, detail, prev, hash.', EXPORT_FLAGS),
    );
    return 0;
  }
  const dir = dataDir(v, rest, 'export');
  const from = (v.from as number | undefined) ?? 1;
  if (!Number.isInteger(from) || from < 1) throw hfError(ErrorCode.OPTION, `--from must be an entry number 1 or more, got ${from}`);
  const db = openStore(dir, { create: false });
  try {
    let buf = '';
    new AuditLog(db).export((line) => {
      buf += line;
      if (buf.length >= 65536) {
        process.stdout.write(buf);
        buf = '';
      }
    }, from);
    process.stdout.write(buf);
  } finally {
    db.close();
  }
  return 0;
}

export async function auditCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(SUBCOMMANDS);
    return 0;
  }
  if (sub === 'verify') return verify(rest);
  if (sub === 'export') return exportLog(rest);
  throw hfError(ErrorCode.OPTION, sub === undefined ? 'audit needs verify or export (holdfast audit --help)' : `unknown audit subcommand ${JSON.stringify(sub)}: verify or export`);
}
