/**
 * `hal/Gpio` through the Linux GPIO character device (/dev/gpiochip*), driven by libgpiod 1.6's
 * tools (Debian bookworm: `apt-get install gpiod`): gpiodetect lists the chips, gpioget reads a line,
 * gpioset drives one, gpioinfo says who holds a busy line. Each runs with execFileSync under a time
 * limit, with LC_ALL=C so its error text is the C library's English. Output formats: ./gpiod.ts.
 *
 * Chips are found by label, never by number; the tools are given the chip's /dev path.
 *   - no /dev/gpiochip*, tools missing, libgpiod 2.x tools, no permission, a line held by someone
 *     else, a tool that fails or hangs: HF_ERR_UNSUPPORTED saying what is missing or what to do;
 *   - a label no chip has (or two chips share), a line outside 0..lines-1, a value not 0 or 1, a
 *     label or line of the wrong type: HF_ERR_OPTION naming it.
 *
 * read() requests the line as an input (that is what gpioget does), so a line driven by an earlier
 * write() stops being driven. write() sets the line and releases it (gpioset --mode=exit); the
 * Raspberry Pi's pinctrl keeps driving the level afterwards, but libgpiod documents the state of a
 * released line as undefined, and other chips' drivers may let it float.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../../firmware/errors';
import type { Gpio, GpioChip } from '../../hal/gpio';
import { GpiodFormatError, type GpioLineInfo, parseGpiodetect, parseGpioget, parseGpioinfo, parseVersion, toolMessage } from './gpiod';

export interface GpiodGpioOptions {
  /** Directory that stands for '/' (default '/'): chips are looked for in ROOT/dev. */
  root?: string;
  /** Where gpiodetect, gpioinfo, gpioget and gpioset are (default '/usr/bin'). */
  toolDir?: string;
  /** Time limit for one run of a tool, ms (default 3000). */
  timeoutMs?: number;
}

const INSTALL = "install libgpiod's tools (Debian, Raspberry Pi OS: apt-get install gpiod)";
type Tool = 'gpiodetect' | 'gpioinfo' | 'gpioget' | 'gpioset';

export class GpiodGpio implements Gpio {
  readonly root: string;
  readonly toolDir: string;
  readonly timeoutMs: number;
  /** Chips as last detected (read and write use these; an unknown label detects again once). */
  private known: GpioChip[] | null = null;
  private versionOk = false;

  constructor(opts: GpiodGpioOptions = {}) {
    const root = opts.root ?? '/';
    const toolDir = opts.toolDir ?? '/usr/bin';
    const timeoutMs = opts.timeoutMs ?? 3000;
    if (typeof root !== 'string' || !path.isAbsolute(root)) throw hfError(ErrorCode.OPTION, `gpio root must be an absolute path, got ${JSON.stringify(root)}`);
    if (typeof toolDir !== 'string' || !path.isAbsolute(toolDir)) throw hfError(ErrorCode.OPTION, `gpio toolDir must be an absolute path, got ${JSON.stringify(toolDir)}`);
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw hfError(ErrorCode.OPTION, `gpio timeoutMs must be an integer 1..60000, got ${timeoutMs}`);
    this.root = path.resolve(root);
    this.toolDir = path.resolve(toolDir);
    this.timeoutMs = timeoutMs;
  }

  /** The chips gpiodetect lists now (detected afresh on every call). */
  chips(): GpioChip[] {
    return this.detect().map((c) => ({ ...c }));
  }

  read(label: string, line: number): 0 | 1 {
    checkArgs(label, line);
    const chip = this.resolve(label, line);
    const out = this.run('gpioget', [this.devPath(chip), String(line)], { chip, line });
    return this.parse('gpioget', () => parseGpioget(out, 1))[0];
  }

  write(label: string, line: number, value: 0 | 1): void {
    checkArgs(label, line);
    if (value !== 0 && value !== 1) throw hfError(ErrorCode.OPTION, `gpio value must be 0 or 1, got ${JSON.stringify(value)}`);
    const chip = this.resolve(label, line);
    this.run('gpioset', ['--mode=exit', this.devPath(chip), `${line}=${value}`], { chip, line });
  }

  /** gpioinfo's rows for the chip labelled `label` (name, holder, direction, flags of each line). */
  lines(label: string): GpioLineInfo[] {
    checkArgs(label, 0);
    const chip = this.resolve(label, 0);
    const out = this.run('gpioinfo', [this.devPath(chip)]);
    const info = this.parse('gpioinfo', () => parseGpioinfo(out));
    const rows = info.get(chip.name) ?? [...info.values()][0];
    if (rows === undefined) throw hfError(ErrorCode.UNSUPPORTED, `gpioinfo printed nothing for ${chip.name} [${chip.label}]`);
    return rows;
  }

  private devPath(chip: GpioChip): string {
    return path.join(this.root, 'dev', chip.name);
  }

  private detect(): GpioChip[] {
    const dev = path.join(this.root, 'dev');
    let nodes: string[] = [];
    try {
      nodes = fs.readdirSync(dev).filter((n) => /^gpiochip\d+$/.test(n));
    } catch {
      // no /dev: no chips
    }
    if (nodes.length === 0) throw hfError(ErrorCode.UNSUPPORTED, `no GPIO on this board: no ${dev}/gpiochip* (a kernel without the GPIO character device, or a machine without GPIO)`);
    if (!this.versionOk) {
      const v = parseVersion(this.run('gpiodetect', ['--version']));
      if (v === null) throw hfError(ErrorCode.UNSUPPORTED, `${this.tool('gpiodetect')} --version does not say which libgpiod it is: ${INSTALL}`);
      if (v.major !== 1) throw hfError(ErrorCode.UNSUPPORTED, `${this.tool('gpiodetect')} is libgpiod ${v.text}; this target speaks the libgpiod 1.x tools (Debian bookworm's gpiod 1.6)`);
      this.versionOk = true;
    }
    const out = this.run('gpiodetect', []);
    const chips = this.parse('gpiodetect', () => parseGpiodetect(out));
    if (chips.length === 0) throw hfError(ErrorCode.UNSUPPORTED, `gpiodetect lists no GPIO chip although ${dev} has ${nodes.join(', ')}`);
    this.known = chips;
    return chips;
  }

  /** The chip labelled `label`, with `line` in range (detects afresh once when the label is not known). */
  private resolve(label: string, line: number): GpioChip {
    const fresh = this.known === null;
    let matches = (this.known ?? this.detect()).filter((c) => c.label === label);
    if (matches.length === 0 && !fresh) matches = this.detect().filter((c) => c.label === label);
    if (matches.length === 0) throw hfError(ErrorCode.OPTION, `no GPIO chip labelled ${JSON.stringify(label)} (chips: ${(this.known ?? []).map((c) => `${c.name} [${c.label}]`).join(', ')})`);
    if (matches.length > 1) throw hfError(ErrorCode.OPTION, `GPIO label ${JSON.stringify(label)} names ${matches.length} chips (${matches.map((c) => c.name).join(', ')}): ambiguous`);
    const chip = matches[0];
    if (line >= chip.lines) throw hfError(ErrorCode.OPTION, `GPIO line ${line} out of range for ${JSON.stringify(label)} (${chip.name}): lines 0..${chip.lines - 1}`);
    return chip;
  }

  private tool(name: Tool): string {
    return path.join(this.toolDir, name);
  }

  private parse<T>(tool: Tool, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof GpiodFormatError) throw hfError(ErrorCode.UNSUPPORTED, `${tool} printed what libgpiod 1.6's ${tool} does not: ${e.message}`, e);
      throw e;
    }
  }

  /** Runs a tool; its stdout. Every failure becomes HF_ERR_UNSUPPORTED saying why. */
  private run(name: Tool, args: string[], about?: { chip: GpioChip; line: number }): string {
    const file = this.tool(name);
    try {
      return execFileSync(file, args, {
        encoding: 'utf8',
        timeout: this.timeoutMs,
        killSignal: 'SIGKILL',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
        maxBuffer: 1 << 20,
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { status?: number | null; signal?: string | null; stderr?: string };
      if (err.code === 'ENOENT') throw hfError(ErrorCode.UNSUPPORTED, `no ${file}: ${INSTALL}`, e);
      if (err.code === 'EACCES') throw hfError(ErrorCode.UNSUPPORTED, `${file} is not executable (EACCES)`, e);
      if (err.code === 'ETIMEDOUT' || (err.signal && err.status === null)) throw hfError(ErrorCode.UNSUPPORTED, `${name} ${args.join(' ')} did not finish within ${this.timeoutMs} ms`, e);
      const msg = toolMessage(String(err.stderr ?? ''));
      const what = about ? `line ${about.line} of ${JSON.stringify(about.chip.label)} (${about.chip.name})` : args.join(' ');
      if (/Permission denied/.test(msg))
        throw hfError(
          ErrorCode.UNSUPPORTED,
          `${name} ${what}: permission denied on the GPIO chip; run as root or as a member of the group owning ${path.join(this.root, 'dev', about?.chip.name ?? 'gpiochip*')} (Raspberry Pi OS: gpio)`,
          e,
        );
      if (/Device or resource busy/.test(msg) && about) throw hfError(ErrorCode.UNSUPPORTED, `${name} ${what}: the line is in use${this.holder(about.chip, about.line)}`, e);
      throw hfError(ErrorCode.UNSUPPORTED, `${name} ${what} failed (exit ${err.status ?? err.code}): ${msg || 'no message'}`, e);
    }
  }

  /** ' by "consumer"' for a held line, from gpioinfo; '' if that cannot be told. */
  private holder(chip: GpioChip, line: number): string {
    try {
      const row = this.parse('gpioinfo', () =>
        parseGpioinfo(this.run('gpioinfo', [this.devPath(chip)]))
          .get(chip.name)
          ?.find((r) => r.offset === line),
      );
      if (row === undefined) return '';
      return row.consumer !== null ? ` by ${JSON.stringify(row.consumer)}` : row.flags.includes('used') ? ' by the kernel' : '';
    } catch {
      return '';
    }
  }
}

function checkArgs(label: string, line: number): void {
  if (typeof label !== 'string' || label === '') throw hfError(ErrorCode.OPTION, `gpio label must be a non-empty string, got ${JSON.stringify(label)}`);
  if (!Number.isInteger(line) || line < 0)
    throw hfError(ErrorCode.OPTION, `gpio line must be an integer >= 0, got ${typeof line === 'number' ? String(line) : JSON.stringify(line)} (label ${JSON.stringify(label)})`);
}
