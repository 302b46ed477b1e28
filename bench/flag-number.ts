/** A bench flag's number: `v` as a finite number of at least `min`, else an error naming `flag`. */
export function flagNumber(flag: string, v: string | undefined, min: number): number {
  const x = Number(v);
  if (v === undefined || !Number.isFinite(x) || x < min) throw new Error(`${flag} needs a number >= ${min}, got ${String(v)}`);
  return x;
}

/** `--name N` of the command line as a positive integer, `def` when absent; an error naming the flag otherwise. */
export function intFlag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${process.argv[i + 1]}`);
  return v;
}
