/**
 * The holdfast rows: `bin/holdfast gateway` and `bin/holdfast device --forward L:127.0.0.1:T` as two
 * processes, as a user runs them from a checkout (bin/holdfast runs dist/cli/holdfast.js, the CLI
 * bundled by esbuild, rebuilt first when a source changed; the runner builds it once before the
 * rows). The gateway listens on HTTP and direct TCP with `--allow 127.0.0.1:T` and a devices file of
 * mode 0600; the device reads its key from a file of mode 0600 and is ready when its log says
 * `session open` on the row's transport (direct TCP, or HTTP with `--no-tcp`) and `forwarding`.
 * The TLS rows add the run's throw-away certificate: `--tls-cert/--tls-key` on the gateway,
 * `--gateway https://...` and `--ca` on the device (its `--tcp` then speaks TLS as well).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, Proc, privateFile } from './proc';
import type { Ctx, Row, Started } from './row';

const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'bin', 'holdfast');
const ID = 'bench-fwd';

interface Shape {
  transport: 'tcp' | 'http';
  tls: boolean;
}

async function start(ctx: Ctx, name: string, shape: Shape, cli: string): Promise<Started> {
  const dir = path.join(ctx.dir, name);
  fs.mkdirSync(dir, { mode: 0o700 });
  const key = `k-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const devices = privateFile(path.join(dir, 'devices.json'), JSON.stringify({ [ID]: key }));
  const keyFile = privateFile(path.join(dir, 'device.key'), `${key}\n`);
  const tls = shape.tls ? ctx.tls() : null;
  let gw: Proc | null = null;
  let http = 0;
  let tcp = 0;
  for (let attempt = 0; gw === null; attempt++) {
    http = await freePort();
    tcp = await freePort();
    const args = [cli, 'gateway', '--http', `127.0.0.1:${http}`, '--tcp', `127.0.0.1:${tcp}`, '--devices', devices, '--allow', `127.0.0.1:${ctx.target}`];
    if (tls !== null) args.push('--tls-cert', tls.cert, '--tls-key', tls.key);
    const p = new Proc(`${name} gateway`, process.execPath, args);
    try {
      await p.waitFor(/gateway: ready/, ctx.setupMs);
      gw = p;
    } catch (e) {
      await p.stop();
      if (attempt === 2) throw e;
    }
  }
  const local = await freePort();
  const args = [cli, 'device', '--gateway', `${tls ? 'https' : 'http'}://127.0.0.1:${http}`, '--id', ID, '--key-file', keyFile, '--forward', `${local}:127.0.0.1:${ctx.target}`];
  args.push(...(shape.transport === 'tcp' ? ['--tcp', `127.0.0.1:${tcp}`] : ['--no-tcp']));
  if (tls !== null) args.push('--ca', tls.cert);
  const dev = new Proc(`${name} device`, process.execPath, args);
  const stop = async (): Promise<void> => {
    await dev.stop();
    await gw!.stop();
  };
  try {
    await dev.waitFor(/device: forwarding/, ctx.setupMs);
    const open = await dev.waitFor(/device: session (?:open|resumed) .*transport=(\w+)/, ctx.setupMs);
    if (open[1] !== shape.transport) await dev.waitFor(shape.transport === 'tcp' ? /device: moved to tcp/ : /device: fell back to http/, ctx.setupMs);
  } catch (e) {
    await stop();
    throw e;
  }
  const runs = cli === CLI ? 'bin/holdfast (dist/cli/holdfast.js)' : cli;
  return { port: local, info: { runs, transport: shape.transport + (tls ? ' + TLS' : '') }, stop };
}

function row(name: string, about: string, shape: Shape): Row {
  return { name, about, start: (ctx) => start(ctx, name, shape, CLI) };
}

/**
 * `--baseline DIR`: the same row run by another checkout's bin/holdfast (built there first), named
 * NAME@base, so a change is measured against what it changed in one run on one machine.
 */
export function baselineRow(r: Row, dir: string): Row {
  const shape = SHAPES[r.name];
  const cli = path.join(dir, 'bin', 'holdfast');
  return { name: `${r.name}@base`, about: `${r.name} run by ${cli}`, start: (ctx) => start(ctx, `${r.name}-base`, shape, cli) };
}

const SHAPES: Record<string, Shape> = {
  'holdfast-tcp': { transport: 'tcp', tls: false },
  'holdfast-http': { transport: 'http', tls: false },
  'holdfast-tcp-tls': { transport: 'tcp', tls: true },
  'holdfast-http-tls': { transport: 'http', tls: true },
};

export const HOLDFAST_ROWS: Row[] = [
  row('holdfast-tcp', 'holdfast device --forward through the gateway, over direct TCP', SHAPES['holdfast-tcp']),
  row('holdfast-http', 'the same over HTTP only (device --no-tcp)', SHAPES['holdfast-http']),
  row('holdfast-tcp-tls', 'holdfast-tcp with TLS on the direct TCP port (gateway --tls-cert/--tls-key, device --ca)', SHAPES['holdfast-tcp-tls']),
  row('holdfast-http-tls', 'holdfast-http over HTTPS', SHAPES['holdfast-http-tls']),
];
