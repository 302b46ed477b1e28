/**
 * The front of a queue of socket chunks, taken as one piece: what both frame readers (the direct
 * transport's and the pair's control connection's) reassemble their frames from.
 */

/**
 * Removes the first `n` bytes from `chunks` (which must hold at least `n`) and returns them: a view
 * into the first chunk when it holds them all, else a copy.
 */
export function takeBytes(chunks: Buffer[], n: number): Buffer {
  const first = chunks[0];
  if (first !== undefined && first.length >= n) {
    if (first.length === n) chunks.shift();
    else chunks[0] = first.subarray(n);
    return first.subarray(0, n);
  }
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  while (at < n) {
    const c = chunks[0];
    const k = Math.min(c.length, n - at);
    c.copy(out, at, 0, k);
    at += k;
    if (k === c.length) chunks.shift();
    else chunks[0] = c.subarray(k);
  }
  return out;
}
