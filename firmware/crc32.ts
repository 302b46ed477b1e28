/** CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), table built once. */
const TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}

/** CRC-32 of `buf[off, off+len)`, continuing from `crc` (start with 0). */
export function crc32(buf: Uint8Array, off = 0, len = buf.length - off, crc = 0): number {
  let c = ~crc;
  for (let i = off; i < off + len; i++) c = TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
