/**
 * `hal/Gpio` of a simulated board: chips with configurable labels and line counts, each line a pin
 * whose level is whatever drove it last — write() from this process, or setInput() from the test
 * standing in for the outside world. So write() then read() of a line gives what was written, and
 * setInput() then read() gives what the test set. Labels and lines are checked as on a real board:
 * an unknown label or a line out of range is HF_ERR_OPTION naming it.
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import type { Gpio, GpioChip } from '../../hal/gpio';

export interface SimGpioOptions {
  /** The chips, gpiochip0 first (default one chip: "sim-gpio", 32 lines). [] makes a board without GPIO. */
  chips?: { label: string; lines: number }[];
}

interface Chip extends GpioChip {
  levels: Uint8Array;
  /** 1 where this process drove the line last (an output), 0 where the outside did or nobody has. */
  driven: Uint8Array;
}

export class SimGpio implements Gpio {
  private readonly byLabel = new Map<string, Chip>();
  private readonly order: Chip[] = [];

  constructor(opts: SimGpioOptions = {}) {
    const chips = opts.chips ?? [{ label: 'sim-gpio', lines: 32 }];
    if (!Array.isArray(chips)) throw hfError(ErrorCode.OPTION, 'sim gpio chips must be an array');
    chips.forEach((c, i) => {
      if (typeof c.label !== 'string' || c.label === '') throw hfError(ErrorCode.OPTION, `sim gpio chip ${i}: label must be a non-empty string, got ${JSON.stringify(c.label)}`);
      if (this.byLabel.has(c.label)) throw hfError(ErrorCode.OPTION, `sim gpio chip ${i}: label ${JSON.stringify(c.label)} is used twice`);
      if (!Number.isInteger(c.lines) || c.lines < 1 || c.lines > 1024) throw hfError(ErrorCode.OPTION, `sim gpio chip ${JSON.stringify(c.label)}: lines must be an integer 1..1024, got ${c.lines}`);
      const chip: Chip = { name: `gpiochip${i}`, label: c.label, lines: c.lines, levels: new Uint8Array(c.lines), driven: new Uint8Array(c.lines) };
      this.byLabel.set(c.label, chip);
      this.order.push(chip);
    });
  }

  chips(): GpioChip[] {
    this.present();
    return this.order.map((c) => ({ name: c.name, label: c.label, lines: c.lines }));
  }

  read(label: string, line: number): 0 | 1 {
    const c = this.find(label, line);
    return c.levels[line] as 0 | 1;
  }

  write(label: string, line: number, value: 0 | 1): void {
    checkArgs(label, line);
    checkValue(value);
    const c = this.find(label, line);
    c.levels[line] = value;
    c.driven[line] = 1;
  }

  /** The test drives line `line` of chip `label` from outside, to `value`. */
  setInput(label: string, line: number, value: 0 | 1): void {
    checkArgs(label, line);
    checkValue(value);
    const c = this.find(label, line);
    c.levels[line] = value;
    c.driven[line] = 0;
  }

  /** The level of a line and whether this process drove it last (for tests). */
  peek(label: string, line: number): { level: 0 | 1; output: boolean } {
    const c = this.find(label, line);
    return { level: c.levels[line] as 0 | 1, output: c.driven[line] === 1 };
  }

  private present(): void {
    if (this.order.length === 0) throw hfError(ErrorCode.UNSUPPORTED, 'no GPIO on this simulated board (configured without chips)');
  }

  private find(label: string, line: number): Chip {
    checkArgs(label, line);
    this.present();
    const c = this.byLabel.get(label);
    if (c === undefined) throw hfError(ErrorCode.OPTION, `no GPIO chip labelled ${JSON.stringify(label)} (chips: ${this.order.map((x) => `${x.name} [${x.label}]`).join(', ')})`);
    if (line >= c.lines) throw hfError(ErrorCode.OPTION, `GPIO line ${line} out of range for ${JSON.stringify(label)} (${c.name}): lines 0..${c.lines - 1}`);
    return c;
  }
}

function checkArgs(label: unknown, line: unknown): void {
  if (typeof label !== 'string' || label === '') throw hfError(ErrorCode.OPTION, `gpio label must be a non-empty string, got ${JSON.stringify(label)}`);
  if (typeof line !== 'number' || !Number.isInteger(line) || line < 0)
    throw hfError(ErrorCode.OPTION, `gpio line must be an integer >= 0, got ${typeof line === 'number' ? String(line) : JSON.stringify(line)} (label ${JSON.stringify(label)})`);
}

function checkValue(value: unknown): void {
  if (value !== 0 && value !== 1) throw hfError(ErrorCode.OPTION, `gpio value must be 0 or 1, got ${JSON.stringify(value)}`);
}
