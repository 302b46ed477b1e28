/**
 * TLS for the `*-tls` rows of bench:peers. The runner makes one throw-away certificate per run (the
 * command of test/tls.scenario.test.ts and RECIPES.md: Debian's `openssl req -x509`, ECDSA P-256,
 * self-signed, CN=localhost, subjectAltName IP:127.0.0.1, valid one day) in a temporary directory,
 * names it to its server and client processes in BENCH_TLS_DIR (they inherit the environment), and
 * removes the directory at the end of the run.
 *
 * Every TLS row runs with the same settings, so the rows compare: Node's TLS defaults on both ends
 * (TLS 1.2 to 1.3, Node's cipher list and curves: TLS 1.3 is negotiated), the server with that
 * certificate and key, the client trusting it as its only CA (`ca`: a full chain verification, as a
 * device with a private CA makes; holdfast's `pin` would skip it). `probe` asks each server what it
 * negotiates, and the report prints it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { makeCert } from '../tools/throwaway-cert';

export const TLS_DIR_ENV = 'BENCH_TLS_DIR';

/** One line for the report: how every TLS row runs. */
export const TLS_SETTINGS =
  "Node's TLS defaults on both ends (TLS 1.3 negotiated), one throw-away ECDSA P-256 certificate for 127.0.0.1 made by openssl per run, trusted by the client as its only CA (`ca`)";

export interface BenchTls {
  cert: Buffer;
  key: Buffer;
  /** What clients trust: the certificate itself (self-signed). */
  ca: Buffer;
}

/**
 * Makes the certificate into a new temporary directory and names it in the environment (for the
 * child processes started after this). Returns the directory, for `removeTlsDir`. Throws when the
 * `openssl` command is missing or fails.
 */
export function makeTlsDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bench-tls-'));
  try {
    makeCert(dir, 'bench');
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`the TLS rows need a certificate: ${(e as Error).message}`);
  }
  process.env[TLS_DIR_ENV] = dir;
  return dir;
}

export function removeTlsDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  if (process.env[TLS_DIR_ENV] === dir) delete process.env[TLS_DIR_ENV];
}

let loaded: BenchTls | null = null;

/** The run's certificate, key and CA (in a server or client process: from BENCH_TLS_DIR). */
export function benchTls(): BenchTls {
  if (loaded !== null) return loaded;
  const dir = process.env[TLS_DIR_ENV];
  if (dir === undefined || dir === '') throw new Error(`${TLS_DIR_ENV} is not set: TLS rows run through bench/run.js, which makes their certificate`);
  const cert = fs.readFileSync(path.join(dir, 'bench.cert.pem'));
  loaded = { cert, key: fs.readFileSync(path.join(dir, 'bench.key.pem')), ca: cert };
  return loaded;
}

/** What a server negotiated with a client of the same settings. */
export interface Negotiated {
  protocol: string;
  cipher: string;
}

/** Opens one TLS connection to 127.0.0.1:`port` as the clients do, reads what was negotiated, closes it. */
export function probe(port: number, timeoutMs = 5000): Promise<Negotiated> {
  return new Promise<Negotiated>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: benchTls().ca });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`TLS probe of port ${port}: no handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(t);
      const n = { protocol: s.getProtocol() ?? '?', cipher: s.getCipher()?.standardName ?? '?' };
      s.destroy();
      resolve(n);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      s.destroy();
      reject(e);
    });
  });
}
