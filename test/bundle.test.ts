/**
 * The one-file bundles (tools/bundle.js): they build, the device bundle keeps its size budget (the
 * report names what is in it), each carries its own target (the device: pi; the gateway: host), the
 * device bundle holds no gateway code, and both run on this Node.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './support/host';

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bundle-'));
test.after(() => fs.rmSync(out, { recursive: true, force: true }));

test('npm run bundle: both bundles, a size report, the device within its budget', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'bundle.js'), '--out', out], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stdout + r.stderr);
  console.log(
    '  ' +
      r.stdout
        .split('\n')
        .filter((l) => /budget/.test(l))
        .join('\n  '),
  );
  const size = JSON.parse(fs.readFileSync(path.join(out, 'size.json'), 'utf8'));
  const dev = size.bundles['holdfast-device.js'];
  assert.ok(dev.bytes > 0 && dev.bytes <= size.budget_kib * 1024, `device bundle ${dev.bytes} bytes, budget ${size.budget_kib} KiB`);
  assert.is(dev.bytes, fs.statSync(path.join(out, 'holdfast-device.js')).size);
  const modules: string[] = dev.modules.map((m: { module: string }) => m.module);
  assert.ok(modules.includes(path.join('targets', 'pi', 'platform.ts')), 'the device bundle is the pi target');
  assert.not.ok(modules.includes(path.join('targets', 'host', 'platform.ts')), 'and not the host target');
  for (const gatewayOnly of ['server-link.ts', 'acceptor.ts', 'gateway.ts', 'http-front.ts', 'tcp-front.ts']) {
    assert.not.ok(
      modules.some((m) => m.endsWith(gatewayOnly)),
      `no ${gatewayOnly} in the device bundle`,
    );
  }
  assert.not.ok(
    modules.some((m) => m.includes('cbor-x') || m.includes('cbor-extract')),
    'no cbor-x in the device bundle',
  );
  assert.equal(
    dev.external.filter((x: string) => !x.startsWith('node:')),
    [],
    "the device bundle requires nothing but Node's own modules (no better-sqlite3)",
  );
  assert.not.ok(
    modules.some((m) => m.includes(path.join('gateway', 'manage')) || m.includes('better-sqlite3')),
    "nothing of the gateway's store in the device bundle",
  );
  const sum = modules.length > 0 ? dev.modules.reduce((n: number, m: { bytes: number }) => n + m.bytes, 0) : 0;
  assert.ok(sum > 0.9 * dev.bytes, 'the per-module report accounts for the bundle');
  const gw: string[] = size.bundles['holdfast-gateway.js'].modules.map((m: { module: string }) => m.module);
  assert.ok(gw.includes(path.join('targets', 'host', 'gateway', 'gateway.ts')), 'the gateway bundle is the host gateway');
  assert.not.ok(
    gw.some((m) => m.startsWith(path.join('targets', 'pi'))),
    'with nothing of the pi target',
  );
});

test('a budget below the size fails the build and names the biggest contributors', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'bundle.js'), '--out', out, '--quiet', '--budget-kib', '16'], { encoding: 'utf8' });
  assert.is(r.status, 1);
  assert.match(r.stderr, /over its 16 KiB budget\. Biggest contributors:/);
  assert.match(r.stderr, /KiB {2}firmware\//);
});

test('the bundles run on this Node: device --help, info on the pi target, gateway --help', () => {
  const dev = path.join(out, 'holdfast-device.js');
  let r = spawnSync(process.execPath, [dev, '--help'], { encoding: 'utf8' });
  assert.is(r.status, 0);
  assert.match(r.stdout, /device {2}keep a session/);
  assert.match(r.stdout, /bench/);
  r = spawnSync(process.execPath, [dev, 'info', '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.is(info.target, 'pi');
  assert.ok(info.memory.totalBytes > 0 || info.memory.error === 'HF_ERR_UNSUPPORTED');
  r = spawnSync(process.execPath, [dev, 'device', '--gateway', 'http://127.0.0.1:1', '--id', 'x', '--key', 'k', '--bogus'], { encoding: 'utf8' });
  assert.is(r.status, 2, 'a bad flag: status 2');
  assert.match(r.stderr, /HF_ERR_OPTION: unknown flag --bogus/);
  r = spawnSync(process.execPath, [path.join(out, 'holdfast-gateway.js'), 'gateway', '--help'], { encoding: 'utf8' });
  assert.is(r.status, 0);
  assert.match(r.stdout, /--devices FILE/);
  assert.is(fs.readFileSync(dev, 'utf8').slice(0, 19), '#!/usr/bin/env node');
  assert.ok((fs.statSync(dev).mode & 0o111) !== 0, 'executable');
});

test('the gateway bundle serves its console from console/ beside it', async () => {
  for (const f of ['index.html', 'console.js', 'operators.js', 'console.css']) assert.ok(fs.existsSync(path.join(out, 'console', f)), `dist/console/${f}`);
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-bundle-data-'));
  const devices = path.join(data, 'devices.json');
  fs.writeFileSync(devices, '{"pi-1": "k"}', { mode: 0o600 });
  // better-sqlite3 is never bundled: a bundle outside the checkout finds it on NODE_PATH (or beside it).
  const gw = spawn(process.execPath, [path.join(out, 'holdfast-gateway.js'), 'gateway', '--http', '127.0.0.1:0', '--devices', devices, '--data', data, '--console', '127.0.0.1:0'], {
    cwd: out,
    env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let log = '';
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no console url in 15 s:\n${log}`)), 15_000);
      const take = (d: Buffer): void => {
        log += d.toString();
        const m = /console {2}url=(\S+)/.exec(log);
        if (m !== null) {
          clearTimeout(t);
          resolve(m[1]);
        }
      };
      gw.stdout.on('data', take);
      gw.stderr.on('data', take);
    });
    const page = await fetch(url);
    assert.is(page.status, 200);
    assert.match(String(page.headers.get('content-type')), /^text\/html/);
    const html = await page.text();
    assert.match(html, /console\.js/);
    assert.match(html, /operators\.js/);
    const ops = await fetch(new URL('/operators.js', url));
    assert.is(ops.status, 200, 'operators.js is served from beside the bundle');
    assert.match(String(ops.headers.get('content-type')), /^text\/javascript/);
  } finally {
    gw.kill('SIGKILL');
    fs.rmSync(data, { recursive: true, force: true });
  }
});

test.run();
