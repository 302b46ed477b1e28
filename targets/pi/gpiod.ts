/**
 * What the command-line tools of libgpiod 1.6 (Debian bookworm's package `gpiod`, 1.6.3) print, and
 * parsers for it. The formats below are those of the tools' C sources (tools/gpiodetect.c,
 * gpioinfo.c, gpioget.c, gpioset.c and tools-common.c of libgpiod v1.6.x) and of the format strings
 * in Debian's 1.6.3 binaries. libgpiod 2.x tools (Debian trixie) print and take other things; they
 * are refused by version (see parseVersion).
 *
 * `gpiodetect --version` (the same for every tool), exit 0:
 *     gpiodetect (libgpiod) v1.6.3
 *     Copyright (C) 2017-2018 Bartosz Golaszewski
 *     License: LGPLv2.1
 *     ...
 *
 * `gpiodetect`, exit 0, one line per chip: printf("%s [%s] (%u lines)\n", name, label, lines):
 *     gpiochip0 [pinctrl-bcm2711] (58 lines)
 *     gpiochip1 [raspberrypi-exp-gpio] (8 lines)
 *   No chip at all: no output, exit 0. A chip it cannot open (permissions): "<argv0>: unable to access
 *   GPIO chips: Permission denied" on stderr, exit 1.
 *
 * `gpioinfo CHIP`, exit 0: a header printf("%s - %u lines:\n", name, lines), then per line
 *     "\tline " %3s(offset) ": " %12s(name) " " %12s(consumer) " " %8s(direction + " ")
 *     %13s(active state + " ") then, when any is set, "[" flags joined by " " "]", then "\n".
 *   name is the line's name in double quotes, or `unnamed`; consumer is the holder's label in double
 *   quotes, or `unused` (a line held by the kernel without a label shows `unused` and the flag
 *   `used`); direction `input`|`output`; active state `active-high`|`active-low`; flags, in this
 *   order: used, open-drain, open-source, pull-up, pull-down, bias-disabled. A field wider than its
 *   column is printed whole, and every later field of that row then unpadded. Examples (Pi 4):
 *     gpiochip0 - 58 lines:
 *     \tline   0:     "ID_SDA"       unused   input  active-high
 *     \tline  17:     "GPIO17"       unused  output  active-high
 *     gpiochip1 - 8 lines:
 *     \tline   2: "STATUS_LED_G_CLK" "led0" output active-high [used]
 *   (note the space before the newline when no flag is set). Unknown chip: "<argv0>: looking up chip
 *   X: No such file or directory" on stderr, exit 1.
 *
 * `gpioget CHIP OFFSET...`: requests the lines as inputs, prints their values joined by " ", then
 *   "\n" (`1`, or `1 0 1` for three offsets), exit 0. Failures on stderr, exit 1:
 *     <argv0>: error reading GPIO values: Device or resource busy      (the line is held)
 *     <argv0>: error reading GPIO values: Invalid argument             (offset out of range)
 *     <argv0>: error reading GPIO values: No such file or directory    (no such chip)
 *     <argv0>: error reading GPIO values: Permission denied
 *     <argv0>: invalid GPIO offset: x
 *
 * `gpioset --mode=exit CHIP OFFSET=VALUE...`: requests the lines as outputs, sets them, releases
 *   them and exits; prints nothing, exit 0. Failures: "<argv0>: error setting the GPIO line values:
 *   <strerror>" (same errors as gpioget), "<argv0>: value must be 0 or 1: 3=2",
 *   "<argv0>: invalid offset: x", exit 1. After release the kernel leaves the line as the chip's
 *   driver leaves it: the Raspberry Pi's pinctrl keeps driving the level just set; other drivers may
 *   let it float.
 *
 * CHIP may be a number, a name, a label or a path (gpiod_chip_open_lookup tries a number, then a
 * label, then a name or a /dev path); this target always passes the /dev path of a chip it found by
 * label, never a number (chip numbers move between kernels).
 */
import type { GpioChip } from '../../hal/gpio';

/** One row of gpioinfo. */
export interface GpioLineInfo {
  offset: number;
  /** The line's name, or null (`unnamed`). */
  name: string | null;
  /** Who holds the line (in quotes in the output), or null (`unused`). */
  consumer: string | null;
  direction: 'input' | 'output';
  activeLow: boolean;
  /** In the tool's order: used, open-drain, open-source, pull-up, pull-down, bias-disabled. */
  flags: string[];
}

/** Thrown by the parsers for output they do not recognise (the caller adds which tool it was). */
export class GpiodFormatError extends Error {}

/** Major, minor (and patch) of "gpiodetect (libgpiod) v1.6.3"; null when not found. */
export function parseVersion(out: string): { major: number; minor: number; patch: number; text: string } | null {
  const m = /\(libgpiod\) v(\d+)\.(\d+)(?:\.(\d+))?\S*/.exec(out);
  if (m === null) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), text: m[0].slice('(libgpiod) '.length) };
}

const DETECT = /^(\S+) \[(.*)\] \((\d+) lines\)$/;

/** gpiodetect's output as chips, in the order printed. Throws GpiodFormatError on any other line. */
export function parseGpiodetect(out: string): GpioChip[] {
  const chips: GpioChip[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const m = DETECT.exec(line);
    if (m === null) throw new GpiodFormatError(`unrecognised line ${JSON.stringify(line)}`);
    chips.push({ name: m[1], label: m[2], lines: Number(m[3]) });
  }
  return chips;
}

const INFO_HEADER = /^(\S+) - (\d+) lines:$/;
const INFO_LINE = /^\tline +(\d+): *(unnamed|"[^"]*") +(unused|".*") +(input|output) +(active-high|active-low) ?(?:\[([a-z -]*)\])?$/;

/** gpioinfo's output for one or more chips: chip name -> its lines. Throws GpiodFormatError on any other line. */
export function parseGpioinfo(out: string): Map<string, GpioLineInfo[]> {
  const chips = new Map<string, GpioLineInfo[]>();
  let current: GpioLineInfo[] | null = null;
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const h = INFO_HEADER.exec(line);
    if (h !== null) {
      current = [];
      chips.set(h[1], current);
      continue;
    }
    const m = INFO_LINE.exec(line);
    if (m === null || current === null) throw new GpiodFormatError(`unrecognised line ${JSON.stringify(line)}`);
    current.push({
      offset: Number(m[1]),
      name: m[2] === 'unnamed' ? null : m[2].slice(1, -1),
      consumer: m[3] === 'unused' ? null : m[3].slice(1, -1),
      direction: m[4] as 'input' | 'output',
      activeLow: m[5] === 'active-low',
      flags: m[6] === undefined ? [] : m[6].split(' ').filter((f) => f !== ''),
    });
  }
  return chips;
}

/** gpioget's values ("1\n", "1 0 1\n"); exactly `count` of them. Throws GpiodFormatError otherwise. */
export function parseGpioget(out: string, count: number): (0 | 1)[] {
  const m = /^([01](?: [01])*)\n?$/.exec(out);
  const values = m === null ? [] : m[1].split(' ').map((v) => (v === '1' ? 1 : 0) as 0 | 1);
  if (values.length !== count) throw new GpiodFormatError(`expected ${count} value(s) of 0 or 1, got ${JSON.stringify(out)}`);
  return values;
}

/** The message of a tool's failure: its last stderr line without the "<argv0>: " prefix. */
export function toolMessage(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const last = lines.length > 0 ? lines[lines.length - 1] : '';
  const at = last.indexOf(': ');
  return at >= 0 && !last.slice(0, at).includes(' ') ? last.slice(at + 2) : last;
}
