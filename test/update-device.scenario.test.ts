/**
 * The real device bundle under the real launcher: both built by tools/bundle.js, the CLI gateway on
 * loopback. A bundle staged for the launcher (as `update` stages one) goes on trial when the device
 * exits; the new device, once its session is open, tells the launcher, which keeps it. Every
 * process is stopped by its PID.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cleanup, devicesFile, freePort, holdfast, Proc, ROOT, tmpDir } from './support/host';
import { sleep, within } from './support/within';

const KEY = 'k-update-device-scenario';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a bundle on trial that opens its session is kept by the launcher', async () => {
  const c = new Cleanup();
  try {
    await within(90_000, 'the device bundle under the launcher', async () => {
      const dir = tmpDir(c, 'holdfast-update-device-');
      const out = path.join(dir, 'dist');
      const built = spawnSync(process.execPath, [path.join(ROOT, 'tools', 'bundle.js'), '--quiet', '--out', out], { cwd: ROOT, encoding: 'utf8' });
      assert.is(built.status, 0, built.stderr);
      const A = fs.readFileSync(path.join(out, 'holdfast-device.js'));
      const B = Buffer.concat([A, Buffer.from('\n// another build\n')]);
      const httpPort = await freePort();
      const gw = holdfast(['gateway', '--http', `127.0.0.1:${httpPort}`, '--devices', devicesFile(dir, { 'pi-1': KEY })], c);
      await gw.waitFor(/gateway: ready/, 15_000, 0);
      const L = path.join(dir, 'launcher');
      const state = path.join(dir, 'state');
      const launcher = new Proc(
        process.execPath,
        [
          path.join(out, 'holdfast-launcher.js'),
          '--dir',
          L,
          '--bundle',
          path.join(out, 'holdfast-device.js'),
          '--update-confirm-ms',
          '20000',
          '--',
          'device',
          '--gateway',
          `http://127.0.0.1:${httpPort}`,
          '--id',
          'pi-1',
          '--key',
          KEY,
          '--state',
          state,
        ],
        c,
      );
      c.add(async () => {
        launcher.kill('SIGTERM');
        await Promise.race([launcher.exited, sleep(5000)]);
      });
      await launcher.waitFor(/device: session open/, 15_000, 0);
      const first = JSON.parse(fs.readFileSync(path.join(state, 'status.json'), 'utf8')).pid as number;
      assert.not.match(launcher.log, /told the launcher/, 'a bundle not on trial has nothing to confirm');

      // Staged as HostManagement.update stages it; the device exits (as it does after staging).
      fs.writeFileSync(path.join(L, 'bundles', `${sha(B)}.js`), B);
      fs.writeFileSync(path.join(L, 'request.json'), JSON.stringify({ sha256: sha(B) }));
      const from = launcher.log.length;
      process.kill(first, 'SIGTERM');
      await launcher.waitFor(/launcher: trying the new bundle/, 15_000, from);
      await launcher.waitFor(/told the launcher to keep this bundle/, 15_000, from);
      await launcher.waitFor(/launcher: the new bundle opened a session: kept/, 15_000, from);
      const s = JSON.parse(fs.readFileSync(path.join(L, 'state.json'), 'utf8'));
      assert.equal([s.phase, s.current, s.previous, s.last.result], ['stable', sha(B), sha(A), 'confirmed']);
      assert.is(fs.existsSync(path.join(L, 'confirmed')), false, 'the launcher took the confirmation');

      // Stopped by its PID: its device stops first.
      const second = JSON.parse(fs.readFileSync(path.join(state, 'status.json'), 'utf8')).pid as number;
      assert.ok(second !== first);
      launcher.kill('SIGTERM');
      assert.is(await launcher.exited, 0, launcher.log.slice(-2000));
      let gone = false;
      for (let i = 0; i < 50 && !gone; i++) {
        try {
          process.kill(second, 0);
          await sleep(50);
        } catch {
          gone = true;
        }
      }
      assert.ok(gone, `device ${second} stopped with the launcher`);
    });
  } finally {
    await c.run();
  }
});

test.run();
