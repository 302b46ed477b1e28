/**
 * General-purpose I/O through the Linux GPIO character device. Chips are named by their label (for
 * example "pinctrl-bcm2711"), not by number: gpiochip numbers move between kernels and boards.
 * A board without GPIO, or without the means to drive it, throws a `HalError` (./errors) with code
 * HF_ERR_UNSUPPORTED; a label or line that does not exist throws one with HF_ERR_OPTION naming it.
 */
export interface GpioChip {
  /** Device name, e.g. "gpiochip0". */
  name: string;
  label: string;
  /** Number of lines. */
  lines: number;
}

export interface Gpio {
  chips(): GpioChip[];
  /** Reads line `line` of the chip labelled `label` as an input: 0 or 1. */
  read(label: string, line: number): 0 | 1;
  /** Drives line `line` of the chip labelled `label` as an output. */
  write(label: string, line: number, value: 0 | 1): void;
}
