#!/usr/bin/env node
'use strict';
// `npm run bundle`: one CommonJS file per target, built by esbuild for the Node.js a board already has
// (Node 18: Raspberry Pi OS / Debian bookworm).
//
//   dist/holdfast-device.js    the device (pi target: `#platform` -> targets/pi/platform.ts)
//   dist/holdfast-gateway.js   the gateway (host target)
//   dist/holdfast-launcher.js  the launcher a board runs the device under, for update and rollback
//                              (targets/host/device/launcher.ts; never updated itself)
//   dist/size.json             bytes per input module of each bundle (from esbuild's metafile)
//
// The target's HAL is chosen here, at build time, by aliasing the module `#platform`; nothing picks a
// target at run time. cbor-x's optional native addon is aliased to an empty module (tools/empty.js).
// The device bundle has a size budget (--budget-kib, default DEVICE_BUDGET_KIB): over it, the build
// fails and names the biggest contributors. The goal is 64 KiB (see the note by DEVICE_BUDGET_KIB).
// better-sqlite3 (the gateway's store, a native addon) is never bundled: left to be required from
// node_modules at run time, and the device bundle fails the build if anything in it would require it.
//
// dist/console/ gets the web console's files, which the gateway bundle serves from beside itself.
//
// Usage: node tools/bundle.js [--budget-kib N] [--quiet] [--out DIR]
const { buildSync } = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const root = path.resolve(__dirname, '..');

// The goal for the device bundle is 64 KiB minified. What it holds today (the link core, the HTTP and
// TCP transports, the transport ladder, authentication, the journal, the mux and port forwarding,
// the CLI) does not fit in that: this budget is set just above the measured size so that growth
// fails the build and has to be argued for. See docs/ARCHITECTURE.md ("The device bundle").
// 128 -> 136 KiB: TLS on both transports (tls-client.ts, the https agent with CONNECT), about 4.5 KiB.
// 136 -> 138 KiB: goodput through paths that cut connections (client-link.ts: a cut request goes again
// at once, back-off after a run of cuts, the request size budget; the transport's fresh connection), about 1.5 KiB.
// 138 KiB also holds: a --key-file that group or others can read is refused (cli/key.ts), about 0.7 KiB.
// 138 -> 142 KiB: the device's counters in its status file (cli/device-cmd.ts: bundles, messages, bytes,
// retransmits, requests, the last error, memory) and the `status` command that prints them (cli/status-cmd.ts), about 4.1 KiB.
// 142 -> 148 KiB: messages in pieces over paths that cut connections, answers kept to the room the
// device asks for, lost answers named (wire.ts, endpoint.ts, in-ring.ts, server-link.ts, client-link.ts), about 5.8 KiB.
// 148 -> 149 KiB: the management error codes (firmware/errors.ts, which every module imports; the
// management resource itself is not in the device bundle yet), about 0.4 KiB; the bulk path's socket corking
// and window defaults (app/forward.ts, device/device.ts), about 0.4 KiB.
// 149 -> 150 KiB (measured before the management resource came in): update with rollback (the HF_ERR_ROLLED_BACK code, and the device telling the launcher
// that a bundle on trial opened a session: cli/device-cmd.ts, device/launcher-child.ts), about 1.0 KiB;
// the launcher itself is a bundle of its own (holdfast-launcher.js), outside this budget.
// 149 -> 176 KiB: the device's management resource (docs/PROTOCOL.md 14), about 26.9 KiB: the operations'
// arguments and results (manage/ops.ts 5.4), CBOR values for commands and answers (cbor-value.ts 4.3),
// the executor and its at-most-once journal (manage/executor.ts 3.0, manage/command-journal.ts 2.9),
// what the config allows (manage/policy.ts 2.0), the command envelope and item framing (manage/command.ts
// 1.7, manage/items.ts 1.3), the board's side (host/manage.ts 1.5, host/manage-files.ts 2.2,
// host/run-program.ts 1.6), its server on the mux (device/manage-server.ts 1.5) and wiring (cli/device-manage.ts 0.7).
// 176 -> 182 KiB: update with rollback inside the management resource, about 5.4 KiB: staging a bundle for
// the launcher (host/device/launcher-files.ts 1.3, host/manage.ts +0.8), its sha256 check (node/sha256.ts
// 2.6), the pending update answered across the restart (manage/update-record.ts 0.8, manage/executor.ts +1.4).
// 182 -> 183 KiB: the silence rule's flags --dead-after-ms and --fail-after (cli/device-cmd.ts), about 0.6 KiB.
// 183 -> 184 KiB: a session the gateway lost is given up for a new one that carries its unacknowledged
// messages (client-link.ts: sessionLost, successor; device/device.ts: handOver), about 0.9 KiB.
// 184 -> 186 KiB: rings that borrow their slabs only while they hold messages (out-ring.ts, in-ring.ts,
// endpoint.ts: the lender's path beside the arena's), about 2.0 KiB. Only a gateway lends (its idle
// sessions then hold no ring memory), but the rings are the same code on both ends.
// 186 -> 190 KiB: acknowledge after the application confirmed (ackAfter 'app': in-ring.ts handOver,
// confirm; endpoint.ts confirm; link-base.ts setAckAfter; options.ts checkAckAfter; app/channel.ts
// done and ack; the --ack-after flag), about 2.3 KiB; redeliveries marked (the hello's again field,
// Endpoint.markAgain/isAgain, the channel's again argument), about 0.7 KiB.
// 190 -> 194 KiB: a device that knows several gateways and moves to the next when one fails or answers
// as a standby or from an older epoch (device/gateway-choice.ts, device/device.ts moveOn and one
// transport per gateway, http-transport.ts epoch and HF_ERR_STANDBY, the repeatable --gateway/--tcp
// and --failover-after flags), about 3.9 KiB (189.5 -> 193.4 KiB measured at eb9f75a and 1cb1880).
// 194 -> 196 KiB: the pair's delivery gate in the shared core (Endpoint.gate, LinkBase.openGate) and a
// channel that confirms each message once its listeners returned (app/channel.ts, ackAfter 'standby'),
// about 0.5 KiB (193.9 -> 194.4 KiB measured on main 78dd087 and gate 6934c9b).
// 196 -> 198 KiB: the gateways a device learns from the welcome (control.ts gw, device.ts learn), about
// 1.2 KiB (194.4 -> 195.6), and epoch frames on the direct transport (net/frames.ts, the device's
// fencing of a superseded primary over TCP), about 0.5 KiB (195.6 -> 196.1 KiB); moving to another
// gateway forgets the old one's back-off and cbor-value writes short ASCII text itself, about 0.5 KiB
// (196.1 -> 196.6 KiB).
// 198 -> 200 KiB: a cluster of gateways: the hello's labels (control.ts lab, the device's labels option
// and --label) and the moved item (control.ts kind 5, device.ts moved, the server link's announceMove),
// about 2.1 KiB (196.7 -> 198.8 KiB measured on fac897a and with it).
const DEVICE_BUDGET_KIB = 200;
const GOAL_KIB = 64;

const BUNDLES = [
  { name: 'holdfast-device.js', entry: 'tools/cli/device-main.ts', platform: 'targets/pi/platform.ts', budget: true, forbid: ['better-sqlite3'] },
  { name: 'holdfast-gateway.js', entry: 'tools/cli/gateway-main.ts', platform: 'targets/host/platform.ts', budget: false },
  { name: 'holdfast-launcher.js', entry: 'tools/cli/launcher-main.ts', platform: 'targets/pi/platform.ts', budget: false, forbid: ['better-sqlite3'] },
];

function parseArgs(argv) {
  const o = { budgetKib: DEVICE_BUDGET_KIB, quiet: false, out: path.join(root, 'dist') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--budget-kib') o.budgetKib = Number(argv[++i]);
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--out') o.out = path.resolve(argv[++i]);
    else {
      console.error(`bundle: unknown argument ${a}\nusage: node tools/bundle.js [--budget-kib N] [--quiet] [--out DIR]`);
      process.exit(2);
    }
  }
  if (!Number.isFinite(o.budgetKib) || o.budgetKib <= 0) {
    console.error('bundle: --budget-kib must be a positive number');
    process.exit(2);
  }
  return o;
}

/** Builds one bundle; returns its sizes and per-module contributions. */
function build(b, out) {
  const outfile = path.join(out, b.name);
  const r = buildSync({
    entryPoints: [path.join(root, b.entry)],
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    outfile,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    banner: { js: '#!/usr/bin/env node' },
    alias: {
      '#platform': path.join(root, b.platform),
      'cbor-extract': path.join(root, 'tools', 'empty.js'),
    },
    external: ['better-sqlite3'],
  });
  fs.chmodSync(outfile, 0o755);
  const output = r.metafile.outputs[path.relative(process.cwd(), outfile)] ?? Object.values(r.metafile.outputs)[0];
  const bytes = fs.statSync(outfile).size;
  const gzip = zlib.gzipSync(fs.readFileSync(outfile), { level: 9 }).length;
  const modules = Object.entries(output.inputs)
    .map(([file, v]) => ({ module: path.relative(root, path.resolve(process.cwd(), file)), bytes: v.bytesInOutput }))
    .filter((m) => m.bytes > 0)
    .sort((x, y) => y.bytes - x.bytes);
  const external = [...new Set(output.imports.filter((i) => i.external).map((i) => i.path))].sort();
  return { name: b.name, file: outfile, bytes, gzip, modules, external };
}

/** Bytes per top-level folder (firmware, targets/host, node_modules/cbor-x, ...). */
function byArea(modules) {
  const areas = new Map();
  for (const m of modules) {
    const parts = m.module.split(path.sep);
    const area = parts[0] === 'node_modules' ? parts.slice(0, 2).join('/') : parts.length > 2 ? parts.slice(0, 2).join('/') : parts[0];
    areas.set(area, (areas.get(area) ?? 0) + m.bytes);
  }
  return [...areas].sort((a, b) => b[1] - a[1]);
}

const kib = (n) => (n / 1024).toFixed(1);

function main() {
  const o = parseArgs(process.argv.slice(2));
  fs.mkdirSync(o.out, { recursive: true });
  const results = BUNDLES.map((b) => ({ ...build(b, o.out), budget: b.budget, forbid: b.forbid ?? [] }));
  const report = { goal_kib: GOAL_KIB, budget_kib: o.budgetKib, bundles: {} };
  let failed = false;
  for (const r of results) {
    report.bundles[r.name] = { bytes: r.bytes, gzip_bytes: r.gzip, areas: Object.fromEntries(byArea(r.modules)), modules: r.modules, external: r.external };
    const forbidden = r.external.filter((x) => r.forbid.includes(x));
    if (forbidden.length > 0) {
      failed = true;
      console.error(`bundle: ${r.name} would require ${forbidden.join(', ')} at run time; it must not (see the note at the top)`);
    }
    if (!o.quiet) {
      console.log(`${r.name}: ${r.bytes} bytes (${kib(r.bytes)} KiB) minified, ${r.gzip} bytes gzip`);
      for (const [area, n] of byArea(r.modules)) console.log(`  ${kib(n).padStart(7)} KiB  ${area}`);
      console.log('  biggest modules:');
      for (const m of r.modules.slice(0, 12)) console.log(`  ${kib(m.bytes).padStart(7)} KiB  ${m.module}`);
    }
    if (r.budget) {
      const limit = o.budgetKib * 1024;
      const verdict = r.bytes <= limit ? 'within' : 'OVER';
      console.log(`${r.name}: ${kib(r.bytes)} KiB, budget ${o.budgetKib} KiB (${verdict}), goal ${GOAL_KIB} KiB (${r.bytes <= GOAL_KIB * 1024 ? 'met' : 'not met'})`);
      if (r.bytes > limit) {
        failed = true;
        console.error(`bundle: ${r.name} is ${r.bytes - limit} bytes over its ${o.budgetKib} KiB budget. Biggest contributors:`);
        for (const m of r.modules.slice(0, 8)) console.error(`  ${kib(m.bytes).padStart(7)} KiB  ${m.module}`);
      }
    }
  }
  fs.writeFileSync(path.join(o.out, 'size.json'), JSON.stringify(report, null, 2) + '\n');
  // The gateway's web console: plain files it serves as they are, found in console/ beside the bundle
  // (targets/host/gateway/manage/console-files.ts).
  const consoleSrc = path.join(root, 'targets', 'host', 'gateway', 'console');
  const consoleOut = path.join(o.out, 'console');
  fs.mkdirSync(consoleOut, { recursive: true });
  for (const f of ['index.html', 'console.js', 'operators.js', 'console.css']) fs.copyFileSync(path.join(consoleSrc, f), path.join(consoleOut, f));
  if (failed) process.exit(1);
}

main();
