/**
 * A throw-away self-signed certificate for tests and benchmarks, made with Debian's `openssl` CLI
 * (the RECIPES.md command): ECDSA P-256, valid one day, `CN` and `subjectAltName` as given (default
 * localhost / IP:127.0.0.1). The key file is written mode 0600 (the gateway refuses a private key
 * others can read). Throws a plain Error saying what to install when `openssl` is missing.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ThrowawayCert {
  cert: Buffer;
  key: Buffer;
  certFile: string;
  keyFile: string;
  /** `sha256:<hex>` of the certificate (DER), for the device's --pin. */
  pin: string;
}

/** Writes `<name>.cert.pem` and `<name>.key.pem` into `dir` and returns them. */
export function makeCert(dir: string, name = 'gateway', cn = 'localhost', san = 'IP:127.0.0.1'): ThrowawayCert {
  const keyFile = path.join(dir, `${name}.key.pem`);
  const certFile = path.join(dir, `${name}.cert.pem`);
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=${san}`,
  ];
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'the openssl command is missing (Debian: apt-get install openssl)' : (e as Error).message;
    throw new Error(`cannot make a throw-away certificate: ${why}`);
  }
  fs.chmodSync(keyFile, 0o600);
  const cert = fs.readFileSync(certFile);
  const der = new X509Certificate(cert).raw;
  return { cert, key: fs.readFileSync(keyFile), certFile, keyFile, pin: `sha256:${createHash('sha256').update(der).digest('hex')}` };
}
