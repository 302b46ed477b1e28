/**
 * A row of bench:forward: a way for one client connection to reach the target. `start` sets it up
 * (processes, keys, waits until its entry port carries connections) and returns the port the client
 * connects to; `stop` ends everything it started. A row that cannot run here (a program missing)
 * throws Skip, saying what to install.
 */
export interface Ctx {
  /** The target's port on 127.0.0.1. */
  target: number;
  /** A temporary directory of the run (removed at its end); a row makes its own folder in it. */
  dir: string;
  /** The run's throw-away certificate (cert.pem, key.pem with mode 0600), made on first use. */
  tls: () => { cert: string; key: string };
  /** Longest the setup may take, ms. */
  setupMs: number;
}

export interface Started {
  /** Where the client connects (127.0.0.1). */
  port: number;
  /** What ran, for the report ("OpenSSH_9.2p1, chacha20-poly1305@openssh.com"). */
  info: Record<string, string>;
  stop: () => Promise<void>;
}

export interface Row {
  name: string;
  /** One line: what the path is. */
  about: string;
  start: (ctx: Ctx) => Promise<Started>;
}

export class Skip extends Error {}
