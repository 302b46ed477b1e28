/**
 * Management end to end with the real CLI processes on loopback: `holdfast operator add`, a gateway
 * with --data and --console, devices with --config (a `manage` section) and --state, jobs through the
 * HTTP API with a console login. Shows: a job for an offline device delivered when it connects; the
 * gateway killed (SIGKILL) while a device runs a command, restarted: the outcome recorded once and the
 * command executed once (the program's own count on disk); an exec not on the allow-list and a
 * file.put outside the allowed directories refused with HF_ERR_NOT_ALLOWED, nothing run or written;
 * a 1 MiB file.put through the stream's flow control, its bytes on disk; config.set applied to the
 * running device's forwards.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI, Cleanup, freePort, holdfast, type Proc, ROOT, tmpDir } from './support/host';
import { sleep, within } from './support/within';
import { spawn } from 'node:child_process';

const KEYS = { 'pi-1': 'k-manage-scenario-1', 'pi-2': 'k-manage-scenario-2' };

interface Reply {
  status: number;
  body: Record<string, unknown>;
  setCookie: string;
}

function api(base: string, method: string, p: string, headers: Record<string, string>, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(p, base);
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, headers: { ...headers, ...(text === undefined ? {} : { 'content-type': 'application/json' }) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8') || '{}'), setCookie: String(res.headers['set-cookie']?.[0] ?? '') }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

function run(args: string[], input: string): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['pipe', 'ignore', 'inherit'] });
    c.on('exit', (code) => resolve(code));
    c.stdin.end(input);
  });
}

test('jobs through the console API survive a gateway kill -9, run once, and refuse what the device does not allow', async () => {
  const c = new Cleanup();
  try {
    await within(170_000, 'the management scenario', async () => {
      const dir = tmpDir(c, 'holdfast-manage-scenario-');
      const data = path.join(dir, 'data');
      const files = path.join(dir, 'files');
      fs.mkdirSync(files);
      // A program that counts its runs on disk and takes a while: the device's own record of what ran.
      const counter = path.join(dir, 'count.sh');
      const runs = path.join(dir, 'runs.txt');
      fs.writeFileSync(counter, `#!/bin/sh\necho run >> ${runs}\nsleep 2\necho counted\n`, { mode: 0o755 });
      const devices = path.join(dir, 'devices.json');
      fs.writeFileSync(devices, JSON.stringify({ 'pi-1': { key: KEYS['pi-1'], labels: { site: 'berlin' } }, 'pi-2': { key: KEYS['pi-2'], labels: { site: 'berlin' } } }), { mode: 0o600 });
      assert.is(await run(['operator', 'add', 'olga', '--role', 'operator', '--data', data], 'olga password 1\n'), 0);

      const sink = net.createServer((s) => s.end('from the sink\n'));
      await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
      c.add(() => sink.close());
      const sinkPort = (sink.address() as net.AddressInfo).port;
      const httpPort = await freePort();
      const consolePort = await freePort();
      const gatewayArgs = ['gateway', '--http', `127.0.0.1:${httpPort}`, '--devices', devices, '--data', data, '--console', `127.0.0.1:${consolePort}`, '--allow', `127.0.0.1:${sinkPort}`];
      let gw: Proc = holdfast(gatewayArgs, c);
      await gw.waitFor(/gateway: ready/, 20_000, 0);
      const base = `http://127.0.0.1:${consolePort}/`;
      const login = await api(base, 'POST', '/api/login', {}, { name: 'olga', password: 'olga password 1' });
      assert.is(login.status, 200, JSON.stringify(login.body));
      const auth = { cookie: login.setCookie.split(';')[0], 'x-csrf-token': String(login.body.csrf) };

      const device = (id: 'pi-1' | 'pi-2', extra: Record<string, unknown> = {}): Proc => {
        const cfg = path.join(dir, `${id}.json`);
        if (!fs.existsSync(cfg))
          fs.writeFileSync(cfg, JSON.stringify({ gateway: `http://127.0.0.1:${httpPort}`, id, manage: { exec: [counter], files: [files] }, deadAfterMs: 3000, failAfter: 1, ...extra }), {
            mode: 0o600,
          });
        // After the gateway restart the silence rule (deadAfterMs, failAfter) gives the lost session up
        // for a new one; the management journal is in the state directory.
        return holdfast(['device', '--config', cfg, '--state', path.join(dir, `state-${id}`)], c, { HOLDFAST_KEY: KEYS[id] });
      };
      const job = async (body: Record<string, unknown>): Promise<string> => {
        const r = await api(base, 'POST', '/api/jobs', auth, body);
        assert.is(r.status, 201, JSON.stringify(r.body));
        return (r.body.job as { id: string }).id;
      };
      const targets = async (id: string): Promise<Record<string, { state: string; errorCode: string | null; sends: number; result: Record<string, unknown> | null }>> => {
        const r = await api(base, 'GET', `/api/jobs/${id}`, auth);
        return Object.fromEntries((r.body.targets as { deviceId: string }[]).map((t) => [t.deviceId, t])) as never;
      };
      const until = async (what: string, cond: () => Promise<boolean>, ms = 20_000): Promise<void> => {
        const end = Date.now() + ms;
        while (!(await cond())) {
          if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
          await sleep(50);
        }
      };

      // pi-2 is offline when its job is made: it gets it when it connects.
      const offline = await job({ op: 'info', selector: 'id=pi-2' });
      assert.is((await targets(offline))['pi-2'].state, 'queued');
      const pi1 = device('pi-1');
      await pi1.waitFor(/device: session open/, 20_000, 0);
      const pi2 = device('pi-2');
      await pi2.waitFor(/device: session open/, 20_000, 0);
      await until('the offline job', async () => (await targets(offline))['pi-2'].state === 'succeeded');
      assert.ok((await targets(offline))['pi-2'].result?.memory !== undefined, 'info answered with readings');

      // The gateway dies while pi-1 runs the counter; a new gateway over the same data finishes the job.
      const slow = await job({ op: 'exec', args: { argv: [counter] }, selector: 'id=pi-1' });
      await until('pi-1 running', async () => (await targets(slow))['pi-1'].state === 'running');
      gw.kill('SIGKILL');
      await gw.exited;
      await sleep(2500); // the program ends meanwhile; its answer waits in the device's journal
      gw = holdfast(gatewayArgs, c);
      await gw.waitFor(/gateway: ready/, 20_000, 0);
      const again = await api(base, 'POST', '/api/login', {}, { name: 'olga', password: 'olga password 1' });
      auth.cookie = again.setCookie.split(';')[0];
      auth['x-csrf-token'] = String(again.body.csrf);
      await until('pi-1 succeeded after the restart', async () => (await targets(slow))['pi-1'].state === 'succeeded', 75_000).catch(async (e) => {
        throw new Error(`${e.message}: ${JSON.stringify((await targets(slow))['pi-1'])}\ngateway:\n${gw.log.slice(-2500)}\npi-1:\n${pi1.log.slice(-2500)}\npi-2:\n${pi2.log.slice(-3000)}`);
      });
      const t = (await targets(slow))['pi-1'];
      assert.is(Buffer.from(String(t.result?.stdout), 'base64').toString(), 'counted\n');
      assert.ok(t.sends >= 2, `sent again after the restart (sends ${t.sends})`);
      assert.is(fs.readFileSync(runs, 'utf8'), 'run\n', 'the program ran once');
      const audit = await api(base, 'GET', '/api/audit?limit=1000', auth);
      const outcomes = (audit.body.entries as { action: string; target: string }[]).filter((e) => e.action === 'job.outcome' && e.target === slow);
      assert.is(outcomes.length, 1, 'one recorded outcome');

      // What the device's config does not allow is refused there, with a code; nothing runs or is written.
      const echo = await job({ op: 'exec', args: { argv: ['/bin/echo', 'hi'] }, selector: 'id=pi-1' });
      const outside = await job({ op: 'file.put', args: { path: path.join(dir, 'outside.txt'), data: Buffer.from('no').toString('base64') }, selector: 'id=pi-1' });
      const big = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff;
      const put = await job({ op: 'file.put', args: { path: path.join(files, 'big.bin'), data: big.toString('base64') }, selector: 'id=pi-1' });
      await until('the three answered', async () => {
        const a = await targets(echo);
        const b = await targets(outside);
        const p = await targets(put);
        return a['pi-1'].state !== 'queued' && a['pi-1'].state !== 'sent' && b['pi-1'].state === 'failed' && p['pi-1'].state === 'succeeded';
      });
      assert.equal([(await targets(echo))['pi-1'].state, (await targets(echo))['pi-1'].errorCode], ['failed', 'HF_ERR_NOT_ALLOWED']);
      assert.is((await targets(outside))['pi-1'].errorCode, 'HF_ERR_NOT_ALLOWED');
      assert.not.ok(fs.existsSync(path.join(dir, 'outside.txt')));
      const onDisk = fs.readFileSync(path.join(files, 'big.bin'));
      assert.is(createHash('sha256').update(onDisk).digest('hex'), createHash('sha256').update(big).digest('hex'), 'the 1 MiB file arrived whole');

      // config.set: a new forward, applied to the running session (no restart of the device).
      const local = await freePort();
      const cfgNow = JSON.parse(fs.readFileSync(path.join(dir, 'pi-1.json'), 'utf8'));
      const set = await job({ op: 'config.set', args: { config: { ...cfgNow, forward: [`${local}:127.0.0.1:${sinkPort}`] } }, selector: 'id=pi-1' });
      await until('config.set', async () => (await targets(set))['pi-1'].state === 'succeeded');
      await pi1.waitFor(/forwarding \(new config\)/, 10_000, 0);
      const got = await new Promise<string>((resolve, reject) => {
        const s = net.connect(local, '127.0.0.1');
        let text = '';
        s.on('data', (d) => (text += d));
        s.on('end', () => resolve(text));
        s.on('error', reject);
      });
      assert.is(got, 'from the sink\n', 'the new forward works without a restart of the device');
      const bad = await job({ op: 'config.set', args: { config: { id: 'pi-1' } }, selector: 'id=pi-1' });
      await until('a config without a gateway refused', async () => (await targets(bad))['pi-1'].state === 'failed');
      assert.is((await targets(bad))['pi-1'].errorCode, 'HF_ERR_BAD_ARGS');
      assert.is(JSON.parse(fs.readFileSync(path.join(dir, 'pi-1.json'), 'utf8')).gateway, `http://127.0.0.1:${httpPort}`, 'the refused config was not written');
      assert.not.match(pi2.log, /HF_ERR_INTERRUPTED/);
      assert.ok(fs.existsSync(path.join(dir, 'state-pi-1', 'manage')), 'the management journal is under --state');
    });
  } finally {
    c.run();
  }
});

test.run();
