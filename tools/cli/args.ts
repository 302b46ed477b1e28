/**
 * Command-line flags: `--name value`, `--name=value`, boolean `--name` / `--no-name`, repeatable
 * flags, and `--help`. Unknown flags, missing values and bad numbers throw HF_ERR_OPTION naming the
 * flag, so the command can print one clear line and its usage.
 */
import { ErrorCode, hfError } from '../../firmware/errors';

export interface Flag {
  name: string;
  /** 'string' (default), 'number', or 'bool'. */
  type?: 'string' | 'number' | 'bool';
  /** May be given several times (values collect in an array). */
  repeat?: boolean;
  /** Placeholder in the usage text, e.g. HOST:PORT. */
  meta?: string;
  help: string;
}

export type Values = Record<string, string | number | boolean | string[] | undefined>;

export function parseArgs(argv: readonly string[], flags: readonly Flag[]): { values: Values; help: boolean; rest: string[] } {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const values: Values = {};
  const rest: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    if (!a.startsWith('--')) {
      rest.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    let name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    let inline: string | undefined = eq < 0 ? undefined : a.slice(eq + 1);
    let f = byName.get(name);
    if (f === undefined && name.startsWith('no-') && byName.get(name.slice(3))?.type === 'bool') {
      name = name.slice(3);
      f = byName.get(name);
      if (inline !== undefined) throw hfError(ErrorCode.OPTION, `--no-${name} takes no value`);
      inline = 'false';
    }
    if (f === undefined) throw hfError(ErrorCode.OPTION, `unknown flag --${name}`);
    let v: string | number | boolean;
    if (f.type === 'bool') {
      if (inline === undefined) v = true;
      else if (inline === 'true' || inline === 'false') v = inline === 'true';
      else throw hfError(ErrorCode.OPTION, `--${name} is true or false, got ${JSON.stringify(inline)}`);
    } else {
      const raw = inline ?? argv[++i];
      if (raw === undefined || (inline === undefined && raw.startsWith('--'))) throw hfError(ErrorCode.OPTION, `--${name} needs a value${f.meta ? ` (${f.meta})` : ''}`);
      if (f.type === 'number') {
        v = Number(raw);
        if (raw.trim() === '' || !Number.isFinite(v)) throw hfError(ErrorCode.OPTION, `--${name} must be a number, got ${JSON.stringify(raw)}`);
      } else v = raw;
    }
    if (f.repeat) {
      const list = (values[name] as string[] | undefined) ?? [];
      list.push(String(v));
      values[name] = list;
    } else {
      if (values[name] !== undefined) throw hfError(ErrorCode.OPTION, `--${name} given twice`);
      values[name] = v;
    }
  }
  return { values, help, rest };
}

/** The usage text of a command: synopsis, what it does, one line per flag. */
export function usage(synopsis: string, about: string, flags: readonly Flag[]): string {
  const rows = flags.map((f) => {
    const left = `--${f.name}${f.type === 'bool' ? '' : ` ${f.meta ?? (f.type === 'number' ? 'N' : 'VALUE')}`}${f.repeat ? ' ...' : ''}`;
    return [left, f.help] as const;
  });
  const w = Math.max(...rows.map(([l]) => l.length), 6) + 2;
  return [`usage: ${synopsis}`, '', about, '', ...rows.map(([l, h]) => `  ${l.padEnd(w)}${h}`), `  ${'--help'.padEnd(w)}this text`, ''].join('\n');
}
