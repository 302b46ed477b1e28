/**
 * The devices in the store (targets/host/gateway/manage/devices-store.ts): rows for the devices file's
 * ids, first and last seen (first kept, last only moving forward), reported info replaced, labels
 * checked and replaced, all kept across a reopen.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore } from '../targets/host/gateway/manage/db';
import { DeviceStore } from '../targets/host/gateway/manage/devices-store';
import { failure } from './support/errors';

test('devices: known ids, seen times, reported info and labels, kept across a reopen', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-devices-'));
  try {
    let db = openStore(tmp);
    let d = new DeviceStore(db);
    d.ensure(['pi-1', 'pi-2']);
    d.ensure(['pi-1']);
    assert.equal(d.get('pi-2'), { id: 'pi-2', labels: {}, info: {}, firstSeen: null, lastSeen: null });
    d.seen('pi-1', 1000, { model: 'Raspberry Pi 4', temp: 41.5 });
    d.seen('pi-1', 3000);
    d.seen('pi-1', 2000);
    d.seen('pi-3', 5000);
    assert.equal(d.get('pi-1'), { id: 'pi-1', labels: {}, info: { model: 'Raspberry Pi 4', temp: 41.5 }, firstSeen: 1000, lastSeen: 3000 });
    d.seen('pi-1', 4000, { model: 'Raspberry Pi 4', temp: 45 });
    assert.equal(d.get('pi-1')?.info, { model: 'Raspberry Pi 4', temp: 45 });
    d.setLabels('pi-1', { site: 'berlin', class: 'pi4' });
    d.setLabels('pi-9', { site: 'paris' });
    assert.is(failure(() => d.setLabels('pi-1', { 'bad key': 'x' })).code, 'HF_ERR_OPTION');
    assert.is(failure(() => d.setLabels('pi-1', { site: 7 as unknown as string })).code, 'HF_ERR_OPTION');
    assert.is(failure(() => d.seen('', 1)).code, 'HF_ERR_OPTION');
    db.close();
    db = openStore(tmp);
    d = new DeviceStore(db);
    assert.equal(
      d.list().map((x) => [x.id, x.labels, x.firstSeen, x.lastSeen]),
      [
        ['pi-1', { class: 'pi4', site: 'berlin' }, 1000, 4000],
        ['pi-2', {}, null, null],
        ['pi-3', {}, 5000, 5000],
        ['pi-9', { site: 'paris' }, null, null],
      ],
    );
    db.close();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
