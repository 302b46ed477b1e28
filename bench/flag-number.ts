/** A bench flag's number: `v` as a finite number of at least `min`, else an error naming `flag`. */
export function flagNumber(flag: string, v: string | undefined, min: number): number {
  const x = Number(v);
  if (v === undefined || !Number.isFinite(x) || x < min) throw new Error(`${flag} needs a number >= ${min}, got ${String(v)}`);
  return x;
}
