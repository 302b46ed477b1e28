/**
 * `hal/Log` for processes: one line per event on a stream (stderr by default), either for people
 *
 *   2026-11-24T06:01:02.123Z info  device: transport tcp  gateway=127.0.0.1:8081
 *
 * or, with `format: 'json'`, one JSON object per line: {"t":"…","level":"info","name":"device","event":"transport tcp","gateway":"…"}.
 */
import type { Log } from '../../hal/log';
import { ErrorCode, hfError } from '../../firmware/errors';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface LogOptions {
  /** Who is speaking (device, gateway, ...). */
  name?: string;
  format?: LogFormat;
  /** Lowest level written (default info). */
  level?: LogLevel;
  /** Where lines go (default process.stderr). */
  out?: { write(line: string): unknown };
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

function plainValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify((v as { code?: string }).code ?? v.message);
  if (typeof v === 'string') return /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

function jsonValue(this: Record<string, unknown>, k: string, v: unknown): unknown {
  // `this[k]` is the value before its toJSON: a Buffer's would turn it into {type, data} first.
  const raw = this[k];
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex');
  if (v instanceof Error) return { code: (v as { code?: string }).code, message: v.message };
  return v;
}

export function createLog(opts: LogOptions = {}): Log {
  const format = opts.format ?? 'text';
  const level = opts.level ?? 'info';
  if (format !== 'text' && format !== 'json') throw hfError(ErrorCode.OPTION, `log format must be text or json, got ${String(format)}`);
  if (!Object.hasOwn(RANK, level)) throw hfError(ErrorCode.OPTION, `log level must be debug, info, warn or error, got ${String(level)}`);
  const out = opts.out ?? process.stderr;
  const min = RANK[level];
  const name = opts.name ?? 'holdfast';
  const emit = (lv: LogLevel, event: string, fields?: Record<string, unknown>): void => {
    if (RANK[lv] < min) return;
    const t = new Date().toISOString();
    if (format === 'json') {
      out.write(JSON.stringify({ t, level: lv, name, event, ...fields }, jsonValue) + '\n');
      return;
    }
    let line = `${t} ${lv.padEnd(5)} ${name}: ${event}`;
    if (fields !== undefined) {
      const parts = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${plainValue(v)}`);
      if (parts.length > 0) line += '  ' + parts.join(' ');
    }
    out.write(line + '\n');
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
  };
}

/** A log that writes nothing. */
export const silentLog: Log = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
