#!/usr/bin/env node
'use strict';
// The device bundle on the Node.js a board has: Debian bookworm's own Node 18, for amd64, arm64 and
// armhf (the last two under qemu-user), fetched and run by tools/ci/node18.sh, plus this machine's
// Node for comparison. For each one:
//   1. `node holdfast-device.js device` connects to a gateway on loopback (run by this machine's Node,
//      from dist/holdfast-gateway.js) and forwards a port to a sink here: 1 MiB must arrive intact;
//   2. `node holdfast-device.js bench --json` over HTTP and over direct TCP.
// Prints one table row per platform, writes dist/boards.json; exits non-zero if anything failed.
//
// Usage: node tools/ci/boards.js [--arches host,amd64,arm64,armhf] [--messages N]
// Needs `tools/ci/node18.sh prepare` first (.ci/run does it).
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const N18 = path.join(__dirname, 'node18.sh');
const DEVICE = path.join(root, 'dist', 'holdfast-device.js');
const GATEWAY = path.join(root, 'dist', 'holdfast-gateway.js');
const KEY = crypto.randomBytes(12).toString('hex');

function args() {
  const o = { arches: ['host', 'amd64', 'arm64', 'armhf'], messages: 3000 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--arches') o.arches = a[++i].split(',');
    else if (a[i] === '--messages') o.messages = Number(a[++i]);
    else throw new Error(`unknown argument ${a[i]}`);
  }
  return o;
}

/** The command that runs node for `arch` ('host': this machine's). */
function nodeCmd(arch) {
  return arch === 'host' ? [process.execPath] : ['bash', N18, 'run', arch];
}

/** Runs a command to the end; its wall time in ms (throws if it fails). */
function run(cmd, argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0], [...cmd.slice(1), ...argv], { stdio: 'ignore', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} ${argv.join(' ')}: exit ${r.status ?? r.signal}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(n, fn) {
  const t = Array.from({ length: n }, fn).sort((a, b) => a - b);
  return Math.round(t[Math.floor(n / 2)]);
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** A child with its output kept; `waitFor(re, ms)` resolves on a matching line. */
function start(cmd, argv, label) {
  const child = spawn(cmd[0], [...cmd.slice(1), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOLDFAST_KEY: KEY } });
  const p = { child, out: '', label };
  const take = (d) => (p.out += d);
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  p.exited = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  p.waitFor = (re, ms) =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      const tick = setInterval(() => {
        const m = re.exec(p.out);
        if (m) {
          clearInterval(tick);
          resolve(m);
        } else if (Date.now() - t0 > ms || child.exitCode !== null) {
          clearInterval(tick);
          reject(new Error(`${label}: no ${re} within ${ms} ms\n${p.out.slice(-2000)}`));
        }
      }, 50);
    });
  p.stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await p.exited;
    clearTimeout(t);
  };
  return p;
}

/** A TCP sink on 127.0.0.1 answering each connection with the sha256 of what it sent. */
function sink() {
  return new Promise((resolve) => {
    const server = net.createServer((s) => {
      const h = crypto.createHash('sha256');
      s.on('data', (d) => h.update(d));
      s.on('end', () => s.end(h.digest('hex')));
      s.on('error', () => {});
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port }));
  });
}

function push(port, data) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => resolve(got));
    s.on('error', reject);
    s.on('connect', () => s.end(data));
    setTimeout(() => reject(new Error('forwarding 1 MiB took over 120 s')), 120_000).unref();
  });
}

async function board(arch, gw, sinkPort, o) {
  const row = { platform: arch === 'host' ? `host node ${process.version} ${process.arch}` : `debian node 18 ${arch}${arch === 'amd64' ? '' : ' (qemu)'}` };
  const local = await freePort();
  const dev = start(nodeCmd(arch), [DEVICE, 'device', '--gateway', gw.url, '--tcp', gw.tcp, '--id', 'board', '--forward', `${local}:127.0.0.1:${sinkPort}`], `${arch} device`);
  try {
    await dev.waitFor(/device: session open/, 180_000);
    const v = /node (v\d+\.\d+\.\d+)/.exec(spawnSync(nodeCmd(arch)[0], [...nodeCmd(arch).slice(1), '-p', '"node " + process.version + " " + process.arch'], { encoding: 'utf8' }).stdout ?? '');
    row.node = v ? v[1] : '?';
    row.transport = /transport (tcp|http)/.exec(dev.out)?.[1] ?? '?';
    const data = crypto.randomBytes(1 << 20);
    const want = crypto.createHash('sha256').update(data).digest('hex');
    const t0 = Date.now();
    const got = await push(local, data);
    row.forward_1mib = got === want ? `intact, ${Date.now() - t0} ms` : `CORRUPT (${got.slice(0, 16)})`;
    row.ok = got === want;
  } catch (e) {
    row.ok = false;
    row.forward_1mib = `FAILED: ${e.message.split('\n')[0]}`;
    row.log = dev.out.slice(-3000);
  } finally {
    await dev.stop();
  }
  // Cold start, timed from outside (under qemu the process cannot start its own emulated node).
  row.start_ms = median(3, () => run(nodeCmd(arch), [DEVICE, '--help']));
  row.node_start_ms = median(3, () => run(nodeCmd(arch), ['-e', '0']));
  for (const transport of ['http', 'tcp']) {
    const b = start(
      nodeCmd(arch),
      [DEVICE, 'bench', '--gateway', gw.url, '--tcp', gw.tcp, '--id', 'board', '--transport', transport, '--json', '--messages', String(o.messages), '--rtt-samples', '300', '--start-runs', '0'],
      `${arch} bench ${transport}`,
    );
    try {
      const code = await Promise.race([b.exited, new Promise((r) => setTimeout(() => r('timeout'), 600_000))]);
      const last = b.out.trim().split('\n').pop();
      if (code !== 0) throw new Error(`exit ${code}: ${b.out.slice(-1500)}`);
      const j = JSON.parse(last);
      // The bench skipped its own start timing (it cannot start an emulated node): the times from here.
      if (j.start_ms === null) Object.assign(j, { start_ms: row.start_ms, node_start_ms: row.node_start_ms });
      row[`bench_${transport}`] = j;
    } catch (e) {
      row.ok = false;
      row[`bench_${transport}`] = { error: e.message.split('\n').slice(0, 4).join(' ') };
    } finally {
      await b.stop();
    }
  }
  return row;
}

function table(rows) {
  const cols = [
    ['platform', (r) => r.platform],
    ['node', (r) => r.node ?? '?'],
    ['1 MiB forward', (r) => r.forward_1mib],
    ['bundle B', (r) => r.bench_http?.bundle_bytes ?? '-'],
    ['start ms (node -e 0)', (r) => `${r.start_ms} (${r.node_start_ms})`],
    ['http rtt p50/p99 ms', (r) => (r.bench_http?.rtt_p50_ms !== undefined ? `${r.bench_http.rtt_p50_ms}/${r.bench_http.rtt_p99_ms}` : (r.bench_http?.error ?? '-'))],
    ['http c2s/s2c msg/s', (r) => (r.bench_http?.c2s_msgs_per_s !== undefined ? `${r.bench_http.c2s_msgs_per_s}/${r.bench_http.s2c_msgs_per_s}` : '-')],
    ['tcp rtt p50/p99 ms', (r) => (r.bench_tcp?.rtt_p50_ms !== undefined ? `${r.bench_tcp.rtt_p50_ms}/${r.bench_tcp.rtt_p99_ms}` : (r.bench_tcp?.error ?? '-'))],
    ['tcp c2s/s2c msg/s', (r) => (r.bench_tcp?.c2s_msgs_per_s !== undefined ? `${r.bench_tcp.c2s_msgs_per_s}/${r.bench_tcp.s2c_msgs_per_s}` : '-')],
    ['rss MB', (r) => r.bench_tcp?.rss_mb ?? r.bench_http?.rss_mb ?? '-'],
  ];
  const cells = rows.map((r) => cols.map(([, f]) => String(f(r))));
  const w = cols.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => '| ' + c.map((x, i) => x.padEnd(w[i])).join(' | ') + ' |';
  return [line(cols.map(([h]) => h)), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...cells.map(line)].join('\n');
}

async function main() {
  const o = args();
  const built = spawnSync(process.execPath, [path.join(root, 'tools', 'bundle.js'), '--quiet'], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-boards-'));
  fs.writeFileSync(path.join(dir, 'devices.json'), JSON.stringify({ board: KEY }), { mode: 0o600 }); // the gateway refuses a devices file others can read
  const s = await sink();
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  const gw = start(
    [process.execPath],
    [GATEWAY, 'gateway', '--http', `127.0.0.1:${httpPort}`, '--tcp', `127.0.0.1:${tcpPort}`, '--devices', path.join(dir, 'devices.json'), '--allow', `127.0.0.1:${s.port}`, '--bench'],
    'gateway',
  );
  const rows = [];
  try {
    await gw.waitFor(/gateway: ready/, 30_000);
    const g = { url: `http://127.0.0.1:${httpPort}`, tcp: `127.0.0.1:${tcpPort}` };
    for (const arch of o.arches) {
      process.stderr.write(`[boards] ${arch} ...\n`);
      rows.push(await board(arch, g, s.port, o));
    }
  } finally {
    await gw.stop();
    s.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(table(rows));
  for (const r of rows) if (r.log) console.log(`\n${r.platform} device log:\n${r.log}`);
  fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
  fs.writeFileSync(path.join(root, 'dist', 'boards.json'), JSON.stringify(rows, null, 2) + '\n');
  const failed = rows.filter((r) => !r.ok);
  console.log(failed.length === 0 ? `boards: ${rows.length} platforms ok` : `boards: FAILED on ${failed.map((r) => r.platform).join(', ')}`);
  process.exit(failed.length === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
