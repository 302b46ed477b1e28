/**
 * One set of checks for every HAL target (hal/platform.ts): host on this machine, pi on this
 * machine's real /proc and /sys, pi on a fake Raspberry Pi 4 tree with fake libgpiod 1.6 tools, pi on
 * a fake x86 thin-client tree without GPIO, and sim. Each reading is either well-formed or HfError
 * HF_ERR_UNSUPPORTED — and on the fake trees exactly what the tree holds. Storage semantics are the
 * same on all; GPIO is checked where a board has it and refused where it has not. Then what is
 * particular to each target: the pi reader's choices and errors, the gpiod tools' formats and
 * failures, the sim's time-driven readings, and (where this kernel offers it) a real gpio-sim chip.
 *
 * Fixtures are built in one temporary directory, removed at the end however the tests end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Platform } from '../hal/platform';
import { platform as hostPlatform } from '../targets/host/platform';
import { osInterfaces } from '../targets/host/system';
import { diskUsage } from '../targets/pi/disk';
import { GpiodGpio } from '../targets/pi/gpio';
import { parseGpiodetect, parseGpioget, parseGpioinfo, parseVersion, toolMessage } from '../targets/pi/gpiod';
import { piPlatform } from '../targets/pi/platform';
import { LinuxSystem, prefixOf } from '../targets/pi/system';
import { SimClock } from '../targets/sim/clock';
import { SimGpio } from '../targets/sim/gpio';
import { simPlatform } from '../targets/sim/platform';
import { failure } from './support/errors';
import { within } from './support/within';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));
const GiB = 2 ** 30;

/** A test with a time limit (the work inside is synchronous; every tool run has its own limit too). */
function bounded(name: string, ms: number, body: () => void | Promise<void>): void {
  test(name, () => within(ms, name, async () => body()));
}

// ---------------------------------------------------------------------------------------------
// Fixtures: one temporary directory for everything.

let TMP = '';
const tmp = (...parts: string[]): string => path.join(TMP, ...parts);

test.before(() => {
  TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-hal-'));
});
test.after(() => {
  if (TMP !== '') fs.rmSync(TMP, { recursive: true, force: true });
});

/** Writes `files` (path relative to `root` -> content) under `root`; returns root. */
function tree(root: string, files: Record<string, string | Buffer>): string {
  for (const [rel, content] of Object.entries(files)) {
    const f = path.join(root, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content);
  }
  return root;
}

/** /proc/meminfo as the kernel prints it ("%-16s%8lu kB" per line, HugePages_* without unit). */
function meminfo(totalKb: number, freeKb: number, availKb: number): string {
  const row = (k: string, v: number, unit = ' kB'): string => `${(k + ':').padEnd(16)}${String(v).padStart(8)}${unit}\n`;
  return (
    row('MemTotal', totalKb) +
    row('MemFree', freeKb) +
    row('MemAvailable', availKb) +
    row('Buffers', 53432) +
    row('Cached', 1022756) +
    row('SwapCached', 0) +
    row('HugePages_Total', 0, '') +
    row('Hugepagesize', 2048)
  );
}

function netIf(d: { address: string; type: number; flags: string; operstate: string; carrier?: string; ifindex: number }): Record<string, string> {
  const f: Record<string, string> = { address: d.address + '\n', type: `${d.type}\n`, flags: d.flags + '\n', operstate: d.operstate + '\n', ifindex: `${d.ifindex}\n` };
  if (d.carrier !== undefined) f.carrier = d.carrier + '\n';
  return f;
}

function prefixed(prefix: string, files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [`${prefix}/${k}`, v]));
}

/** A Raspberry Pi 4 Model B (4 GB) as its kernel shows it. */
function fakePiTree(root: string): string {
  tree(root, {
    'sys/firmware/devicetree/base/model': Buffer.from('Raspberry Pi 4 Model B Rev 1.4\0'),
    'proc/meminfo': meminfo(3884328, 2409804, 3391012),
    'proc/loadavg': '0.52 0.58 0.59 1/389 12345\n',
    'proc/uptime': '12345.67 45678.90\n',
    'sys/class/thermal/thermal_zone0/type': 'cpu-thermal\n',
    'sys/class/thermal/thermal_zone0/temp': '48686\n',
    ...prefixed('sys/class/net/lo', netIf({ address: '00:00:00:00:00:00', type: 772, flags: '0x9', operstate: 'unknown', carrier: '1', ifindex: 1 })),
    ...prefixed('sys/class/net/eth0', netIf({ address: 'dc:a6:32:01:02:03', type: 1, flags: '0x1003', operstate: 'up', carrier: '1', ifindex: 2 })),
    ...prefixed('sys/class/net/wlan0', netIf({ address: 'dc:a6:32:01:02:04', type: 1, flags: '0x1002', operstate: 'down', ifindex: 3 })),
    'dev/gpiochip0': '',
    'dev/gpiochip1': '',
  });
  // /proc/device-tree is a symlink to the firmware's device tree, as on the board.
  fs.symlinkSync('../sys/firmware/devicetree/base', path.join(root, 'proc', 'device-tree'));
  return root;
}

const PI_ADDRESSES: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {
  lo: [
    { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
    { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
  ],
  eth0: [
    { address: '192.168.1.20', netmask: '255.255.255.0', family: 'IPv4', mac: 'dc:a6:32:01:02:03', internal: false, cidr: '192.168.1.20/24' },
    { address: 'fe80::dea6:32ff:fe01:203', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: 'dc:a6:32:01:02:03', internal: false, cidr: 'fe80::dea6:32ff:fe01:203/64', scopeid: 2 },
  ],
};

/** An HP t630 thin client (x86): DMI, ACPI and package thermal zones, no GPIO. */
function fakeX86Tree(root: string): string {
  return tree(root, {
    'sys/class/dmi/id/sys_vendor': 'HP\n',
    'sys/class/dmi/id/product_name': 'HP t630 Thin Client\n',
    'sys/class/dmi/id/product_version': '\n',
    'proc/meminfo': meminfo(7995440, 6000000, 7001234),
    'proc/loadavg': '1.05 0.70 0.31 2/201 9876\n',
    'proc/uptime': '86400.25 300000.00\n',
    'sys/class/thermal/thermal_zone0/type': 'acpitz\n',
    'sys/class/thermal/thermal_zone0/temp': '27800\n',
    'sys/class/thermal/thermal_zone1/type': 'x86_pkg_temp\n',
    'sys/class/thermal/thermal_zone1/temp': '41000\n',
    'sys/class/thermal/thermal_zone2/type': 'iwlwifi_1\n', // no temp: unreadable while the radio sleeps
    ...prefixed('sys/class/net/lo', netIf({ address: '00:00:00:00:00:00', type: 772, flags: '0x9', operstate: 'unknown', carrier: '1', ifindex: 1 })),
    ...prefixed('sys/class/net/enp1s0', netIf({ address: '64:51:06:aa:bb:cc', type: 1, flags: '0x1003', operstate: 'up', carrier: '1', ifindex: 2 })),
    ...prefixed('sys/class/net/wlp2s0', netIf({ address: 'a4:34:d9:11:22:33', type: 1, flags: '0x1002', operstate: 'down', ifindex: 3 })),
    'sys/class/net/bonding_masters': '\n', // a file, not an interface
    'dev/null': '',
  });
}

const X86_ADDRESSES: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {
  lo: PI_ADDRESSES.lo,
  // cidr null: the prefix comes from the netmask.
  enp1s0: [{ address: '10.0.0.5', netmask: '255.255.0.0', family: 'IPv4', mac: '64:51:06:aa:bb:cc', internal: false, cidr: null }],
};

// ---------------------------------------------------------------------------------------------
// Fake libgpiod 1.6 tools: POSIX sh scripts that print exactly what the real ones print (formats in
// targets/pi/gpiod.ts), keeping line levels in files under DATA/chips/<name>/level/<offset>.

interface FakeChip {
  name: string;
  label: string;
  lines: number;
  /** Line names (index = offset); missing ones are unnamed. */
  names?: (string | null)[];
  /** Lines held by someone else: offset -> consumer (null: held by the kernel without a label). */
  busy?: Record<number, string | null>;
}

/** One gpioinfo row exactly as libgpiod 1.6's prinfo() pads it (a field over its width unpads the rest). */
function gpioinfoRow(offset: number, name: string | null, consumer: string | null, direction: 'input' | 'output', activeLow: boolean, flags: string[]): string {
  let of = false;
  const pr = (width: number, s: string): string => {
    if (s.length - 1 >= width || of) {
      of = true;
      return s;
    }
    return s.padStart(width);
  };
  return `\tline ${pr(3, String(offset))}: ${pr(12, name === null ? 'unnamed' : `"${name}"`)} ${pr(12, consumer === null ? 'unused' : `"${consumer}"`)} ${pr(8, direction + ' ')}${pr(13, (activeLow ? 'active-low' : 'active-high') + ' ')}${flags.length ? `[${flags.join(' ')}]` : ''}`;
}

function gpioinfoText(c: FakeChip): string {
  let s = `${c.name} - ${c.lines} lines:\n`;
  for (let i = 0; i < c.lines; i++) {
    const busy = c.busy !== undefined && i in c.busy;
    s += gpioinfoRow(i, c.names?.[i] ?? null, busy ? c.busy![i] : null, busy ? 'output' : 'input', false, busy ? ['used'] : []) + '\n';
  }
  return s;
}

const VERSION = (tool: string, v = '1.6.3'): string =>
  `${tool} (libgpiod) v${v}\nCopyright (C) 2017-2018 Bartosz Golaszewski\nLicense: LGPLv2.1\nThis is free software: you are free to change and redistribute it.\nThere is NO WARRANTY, to the extent permitted by law.\n`;

interface FakeGpiod {
  toolDir: string;
  data: string;
  setInput(name: string, line: number, v: 0 | 1): void;
  level(name: string, line: number): string;
  calls(): string[];
  clearCalls(): void;
  setChips(chips: FakeChip[]): void;
}

function fakeGpiod(dir: string, chips: FakeChip[], opts: { version?: string } = {}): FakeGpiod {
  const toolDir = path.join(dir, 'bin');
  const data = path.join(dir, 'data');
  fs.mkdirSync(toolDir, { recursive: true });
  const setChips = (list: FakeChip[]): void => {
    fs.rmSync(path.join(data, 'chips'), { recursive: true, force: true });
    fs.mkdirSync(path.join(data, 'chips'), { recursive: true });
    fs.writeFileSync(path.join(data, 'gpiodetect.txt'), list.map((c) => `${c.name} [${c.label}] (${c.lines} lines)\n`).join(''));
    for (const c of list) {
      const cd = path.join(data, 'chips', c.name);
      fs.mkdirSync(path.join(cd, 'level'), { recursive: true });
      fs.mkdirSync(path.join(cd, 'busy'), { recursive: true });
      fs.writeFileSync(path.join(cd, 'lines'), String(c.lines));
      fs.writeFileSync(path.join(cd, 'info.txt'), gpioinfoText(c));
      for (const off of Object.keys(c.busy ?? {})) fs.writeFileSync(path.join(cd, 'busy', off), '');
    }
    fs.writeFileSync(path.join(data, 'order'), list.map((c) => c.name).join('\n') + '\n');
  };
  setChips(chips);
  fs.writeFileSync(path.join(data, 'calls.log'), '');
  const head = (tool: string): string => `#!/bin/sh
DATA='${data}'
prog="$0"
echo "${tool} $*" >> "$DATA/calls.log"
case "$1" in
  -v|--version) printf '%s' '${VERSION(tool, opts.version)}'; exit 0;;
  -h|--help) echo "Usage: $prog [OPTIONS]"; exit 0;;
esac
# gpiod_chip_open_lookup: a /dev path or a name (labels and numbers are not used by this target).
chip_of() { n=$(basename "$1"); [ -f "$DATA/chips/$n/lines" ] && echo "$n"; }
`;
  const tools: Record<string, string> = {
    gpiodetect: `[ $# -gt 0 ] && { echo "$prog: unrecognized argument: $1" >&2; exit 1; }
cat "$DATA/gpiodetect.txt"
`,
    gpioinfo: `if [ $# -eq 0 ]; then
  for n in $(cat "$DATA/order"); do cat "$DATA/chips/$n/info.txt"; done
  exit 0
fi
for a in "$@"; do
  n=$(chip_of "$a") || { echo "$prog: looking up chip $a: No such file or directory" >&2; exit 1; }
  cat "$DATA/chips/$n/info.txt"
done
`,
    gpioget: `[ $# -lt 1 ] && { echo "$prog: gpiochip must be specified" >&2; exit 1; }
[ $# -lt 2 ] && { echo "$prog: at least one GPIO line offset must be specified" >&2; exit 1; }
n=$(chip_of "$1") || { echo "$prog: error reading GPIO values: No such file or directory" >&2; exit 1; }
shift
for o in "$@"; do
  case "$o" in ''|*[!0-9]*) echo "$prog: invalid GPIO offset: $o" >&2; exit 1;; esac
done
out=''
for o in "$@"; do
  [ "$o" -ge "$(cat "$DATA/chips/$n/lines")" ] && { echo "$prog: error reading GPIO values: Invalid argument" >&2; exit 1; }
  [ -f "$DATA/chips/$n/busy/$o" ] && { echo "$prog: error reading GPIO values: Device or resource busy" >&2; exit 1; }
  v=$(cat "$DATA/chips/$n/level/$o" 2>/dev/null || echo 0)
  out="$out\${out:+ }$v"
done
printf '%s\\n' "$out"
`,
    gpioset: `while [ $# -gt 0 ]; do case "$1" in --mode=exit) shift;; -*) echo "$prog: unsupported option in this fake: $1" >&2; exit 1;; *) break;; esac; done
[ $# -lt 1 ] && { echo "$prog: gpiochip must be specified" >&2; exit 1; }
[ $# -lt 2 ] && { echo "$prog: at least one GPIO line offset to value mapping must be specified" >&2; exit 1; }
n=$(chip_of "$1") || { echo "$prog: error setting the GPIO line values: No such file or directory" >&2; exit 1; }
shift
for m in "$@"; do
  case "$m" in *=*) ;; *) echo "$prog: invalid offset<->value mapping: $m" >&2; exit 1;; esac
  o=\${m%%=*}; v=\${m#*=}
  case "$v" in 0|1) ;; *) echo "$prog: value must be 0 or 1: $m" >&2; exit 1;; esac
  case "$o" in ''|*[!0-9]*) echo "$prog: invalid offset: $m" >&2; exit 1;; esac
  [ "$o" -ge "$(cat "$DATA/chips/$n/lines")" ] && { echo "$prog: error setting the GPIO line values: Invalid argument" >&2; exit 1; }
  [ -f "$DATA/chips/$n/busy/$o" ] && { echo "$prog: error setting the GPIO line values: Device or resource busy" >&2; exit 1; }
done
for m in "$@"; do printf '%s' "\${m#*=}" > "$DATA/chips/$n/level/\${m%%=*}"; done
`,
  };
  for (const [name, body] of Object.entries(tools)) fs.writeFileSync(path.join(toolDir, name), head(name) + body, { mode: 0o755 });
  return {
    toolDir,
    data,
    setInput: (name, line, v) => fs.writeFileSync(path.join(data, 'chips', name, 'level', String(line)), String(v)),
    level: (name, line) => {
      try {
        return fs.readFileSync(path.join(data, 'chips', name, 'level', String(line)), 'utf8');
      } catch {
        return '';
      }
    },
    calls: () =>
      fs
        .readFileSync(path.join(data, 'calls.log'), 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    clearCalls: () => fs.writeFileSync(path.join(data, 'calls.log'), ''),
    setChips,
  };
}

const PI_CHIPS: FakeChip[] = [
  {
    name: 'gpiochip0',
    label: 'pinctrl-bcm2711',
    lines: 58,
    names: ['ID_SDA', 'ID_SCL', 'SDA1', 'SCL1', 'GPIO_GCLK', 'GPIO5', 'GPIO6', 'SPI_CE1_N', 'SPI_CE0_N', 'SPI_MISO', 'SPI_MOSI', 'SPI_SCLK', 'GPIO12', 'GPIO13', 'TXD1', 'RXD1', 'GPIO16', 'GPIO17'],
    busy: { 8: 'spi0 CS0' },
  },
  {
    name: 'gpiochip1',
    label: 'raspberrypi-exp-gpio',
    lines: 8,
    names: ['BT_ON', 'WL_ON', 'PWR_LED_OFF', 'GLOBAL_RESET', 'VDD_SD_IO_SEL', 'CAM_GPIO', 'SD_PWR_ON', null],
    busy: { 2: 'led1', 6: null },
  },
];

// ---------------------------------------------------------------------------------------------
// The targets under test. Each is built when its first test runs (the temporary directory exists
// only from test.before on).

interface GpioExpect {
  chips: { label: string; lines: number }[];
  /** Drives an input from outside (the test's hand on the pin). */
  setInput(label: string, line: number, v: 0 | 1): void;
  /** A free line of each chip to write and read (lines held by others are not). */
  freeLine(label: string): number;
}

interface Expect {
  model: string;
  cpuTemperature: number;
  memory: { totalBytes: number; availableBytes: number };
  load: [number, number, number];
  uptimeSeconds: number;
  interfaces: unknown;
}

interface Target {
  name: string;
  make(): Platform;
  /** Exactly what the fake tree holds (null: a real machine, whatever it says). */
  expect: Expect | null;
  /** 'none': GPIO must be HF_ERR_UNSUPPORTED; 'any': a real machine; else a board with GPIO. */
  gpio: 'none' | 'any' | GpioExpect;
  /** Storage directory: a real one under the temp dir, or the sim's name for one. */
  storageDir(): string;
}

let piFake: { p: ReturnType<typeof piPlatform>; tools: FakeGpiod } | null = null;
function fakePi(): { p: ReturnType<typeof piPlatform>; tools: FakeGpiod } {
  if (piFake === null) {
    const root = fakePiTree(tmp('pi-root'));
    const tools = fakeGpiod(tmp('pi-gpiod'), PI_CHIPS);
    piFake = { p: piPlatform({ root, toolDir: tools.toolDir, addresses: () => PI_ADDRESSES, gpioTimeoutMs: 5000 }), tools };
  }
  return piFake;
}

let sim: ReturnType<typeof simPlatform> | null = null;
function simBoard(): ReturnType<typeof simPlatform> {
  if (sim === null)
    sim = simPlatform({
      seed: 42,
      gpio: {
        chips: [
          { label: 'sim-gpio', lines: 32 },
          { label: 'sim-expander', lines: 8 },
        ],
      },
    });
  return sim;
}

const labelToName = (label: string): string => PI_CHIPS.find((c) => c.label === label)!.name;

const TARGETS: Target[] = [
  { name: 'host (this machine)', make: () => hostPlatform, expect: null, gpio: 'none', storageDir: () => tmp('host-store') },
  { name: 'pi on this machine', make: () => piPlatform(), expect: null, gpio: 'any', storageDir: () => tmp('pi-real-store') },
  {
    name: 'pi on a fake Raspberry Pi 4',
    make: () => fakePi().p,
    expect: {
      model: 'Raspberry Pi 4 Model B Rev 1.4',
      cpuTemperature: 48.686,
      memory: { totalBytes: 3884328 * 1024, availableBytes: 3391012 * 1024 },
      load: [0.52, 0.58, 0.59],
      uptimeSeconds: 12345.67,
      interfaces: [
        { name: 'lo', mac: null, addresses: ['127.0.0.1/8', '::1/128'], up: true },
        { name: 'eth0', mac: 'dc:a6:32:01:02:03', addresses: ['192.168.1.20/24', 'fe80::dea6:32ff:fe01:203/64'], up: true },
        { name: 'wlan0', mac: 'dc:a6:32:01:02:04', addresses: [], up: false },
      ],
    },
    gpio: {
      chips: PI_CHIPS.map((c) => ({ label: c.label, lines: c.lines })),
      setInput: (label, line, v) => fakePi().tools.setInput(labelToName(label), line, v),
      freeLine: (label) => (label === 'pinctrl-bcm2711' ? 17 : 0),
    },
    storageDir: () => tmp('pi-fake-store'),
  },
  {
    name: 'pi on a fake x86 thin client',
    make: () => piPlatform({ root: fakeX86Tree(tmp('x86-root')), toolDir: fakeGpiod(tmp('x86-gpiod'), []).toolDir, addresses: () => X86_ADDRESSES }),
    expect: {
      model: 'HP t630 Thin Client',
      cpuTemperature: 41,
      memory: { totalBytes: 7995440 * 1024, availableBytes: 7001234 * 1024 },
      load: [1.05, 0.7, 0.31],
      uptimeSeconds: 86400.25,
      interfaces: [
        { name: 'lo', mac: null, addresses: ['127.0.0.1/8', '::1/128'], up: true },
        { name: 'enp1s0', mac: '64:51:06:aa:bb:cc', addresses: ['10.0.0.5/16'], up: true },
        { name: 'wlp2s0', mac: 'a4:34:d9:11:22:33', addresses: [], up: false },
      ],
    },
    gpio: 'none',
    storageDir: () => tmp('x86-store'),
  },
  {
    name: 'sim',
    make: () => simBoard(),
    expect: null,
    gpio: {
      chips: [
        { label: 'sim-gpio', lines: 32 },
        { label: 'sim-expander', lines: 8 },
      ],
      setInput: (label, line, v) => simBoard().gpio.setInput(label, line, v),
      freeLine: () => 3,
    },
    storageDir: () => '/var/lib/holdfast',
  },
];

// ---------------------------------------------------------------------------------------------
// The checks every target passes.

type Reading<T> = { ok: true; value: T } | { ok: false; message: string };

/** The value of `fn`, or the message of its HF_ERR_UNSUPPORTED; any other outcome fails the test. */
function reading<T>(what: string, fn: () => T): Reading<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    const f = failure(() => {
      throw e;
    });
    assert.is(f.code, 'HF_ERR_UNSUPPORTED', `${what}: ${f.message}`);
    assert.ok(f.message.length > 5, `${what}: the message says what is missing: ${f.message}`);
    return { ok: false, message: f.message };
  }
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

function checkAddress(a: string, where: string): void {
  const m = /^(.+)\/(\d{1,3})$/.exec(a);
  assert.ok(m !== null, `${where}: ${a} has a /prefix`);
  const kind = net.isIP(m![1]);
  assert.ok(kind === 4 || kind === 6, `${where}: ${a} is an IP address`);
  assert.ok(Number(m![2]) <= (kind === 4 ? 32 : 128), `${where}: ${a} prefix in range`);
}

for (const t of TARGETS) {
  bounded(`${t.name}: system readings are well-formed or HF_ERR_UNSUPPORTED`, 20_000, () => {
    const s = t.make().system;
    const model = reading('model', () => s.model());
    if (model.ok) {
      assert.type(model.value, 'string');
      assert.ok(model.value.length > 0 && model.value === model.value.trim() && !model.value.includes('\0'), JSON.stringify(model.value));
    }
    const temp = reading('cpuTemperature', () => s.cpuTemperature());
    if (temp.ok) assert.ok(typeof temp.value === 'number' && temp.value >= -40 && temp.value <= 150, `temperature ${temp.value}`);
    const mem = reading('memory', () => s.memory());
    if (mem.ok) {
      assert.ok(isCount(mem.value.totalBytes) && mem.value.totalBytes > 0, `total ${mem.value.totalBytes}`);
      assert.ok(isCount(mem.value.availableBytes) && mem.value.availableBytes <= mem.value.totalBytes, `available ${mem.value.availableBytes}`);
    }
    const load = reading('load', () => s.load());
    if (load.ok) {
      assert.ok(Array.isArray(load.value) && load.value.length === 3, JSON.stringify(load.value));
      for (const x of load.value) assert.ok(typeof x === 'number' && Number.isFinite(x) && x >= 0, `load ${x}`);
    }
    const up = reading('uptimeSeconds', () => s.uptimeSeconds());
    if (up.ok) assert.ok(typeof up.value === 'number' && Number.isFinite(up.value) && up.value > 0, `uptime ${up.value}`);
    const disk = reading('disk', () => s.disk(os.tmpdir()));
    if (disk.ok) {
      assert.ok(isCount(disk.value.totalBytes) && disk.value.totalBytes > 0, `disk total ${disk.value.totalBytes}`);
      assert.ok(isCount(disk.value.freeBytes) && disk.value.freeBytes <= disk.value.totalBytes, `disk free ${disk.value.freeBytes}`);
    }
    const ifs = reading('interfaces', () => s.interfaces());
    if (ifs.ok) {
      assert.ok(Array.isArray(ifs.value));
      const names = new Set<string>();
      for (const i of ifs.value) {
        assert.ok(typeof i.name === 'string' && i.name.length > 0 && !names.has(i.name), `interface name ${JSON.stringify(i.name)}`);
        names.add(i.name);
        assert.ok(i.mac === null || /^[0-9a-f]{2}(:[0-9a-f]{2})+$/.test(i.mac), `${i.name} mac ${i.mac}`);
        assert.type(i.up, 'boolean');
        assert.ok(Array.isArray(i.addresses));
        for (const a of i.addresses) checkAddress(a, i.name);
      }
    }
    if (t.expect !== null) {
      const e = t.expect;
      const values = { model, temp, mem, load, up, ifs };
      for (const [k, r] of Object.entries(values)) assert.ok(r.ok, `${k}: the tree holds it: ${r.ok ? '' : r.message}`);
      assert.is(s.model(), e.model);
      assert.is(s.cpuTemperature(), e.cpuTemperature);
      assert.equal(s.memory(), e.memory);
      assert.equal(s.load(), e.load);
      assert.is(s.uptimeSeconds(), e.uptimeSeconds);
      assert.equal(s.interfaces(), e.interfaces);
    }
  });

  bounded(`${t.name}: storage write/read/append/remove semantics`, 20_000, () => {
    const p = t.make();
    const dir = t.storageDir();
    const st = p.storage(dir);
    assert.is(st.read('journal'), null, 'a missing key reads null');
    st.write('k', bytes('hello'));
    assert.is(text(st.read('k')), 'hello');
    const got = st.read('k')!;
    got[0] = 0;
    assert.is(text(st.read('k')), 'hello', 'the bytes read are the caller’s');
    const src = bytes('abc');
    st.write('m', src);
    src[0] = 0x7a;
    assert.is(text(st.read('m')), 'abc', 'the bytes written are copied');
    st.write('m', bytes('x'));
    assert.is(text(st.read('m')), 'x', 'a shorter value replaces all of the old one');
    st.write('empty', new Uint8Array(0));
    assert.equal(st.read('empty'), new Uint8Array(0), 'an empty value is not a missing one');
    st.append('log', bytes('xxABCxx'), 2, 3);
    assert.is(text(st.read('log')), 'ABC', 'append creates the value; only data[off, off+len) is written');
    st.append('log', bytes('DE'), 0, 2);
    st.append('log', bytes('zzz'), 1, 0);
    assert.is(text(st.read('log')), 'ABCDE');
    st.write('log', bytes('new'));
    st.append('log', bytes('1'), 0, 1);
    assert.is(text(st.read('log')), 'new1', 'append after write extends the new value');
    st.remove('log');
    assert.is(st.read('log'), null);
    st.remove('log');
    st.remove('never-there');
    st.append('log', bytes('z'), 0, 1);
    assert.is(text(st.read('log')), 'z', 'append after remove starts afresh');
    for (const key of ['', '.hidden', 'a/b', '../x', 'x.tmp', 'x'.repeat(129), 'sp ace', '-x']) {
      for (const [what, op] of [
        ['read', () => st.read(key)],
        ['write', () => st.write(key, bytes('v'))],
        ['append', () => st.append(key, bytes('v'), 0, 1)],
        ['remove', () => st.remove(key)],
      ] as [string, () => unknown][]) {
        const f = failure(op);
        assert.is(f.code, 'HF_ERR_OPTION', `${what} ${JSON.stringify(key)}`);
        assert.ok(f.message.includes(JSON.stringify(key)), f.message);
      }
    }
    st.close();
    st.close();
    st.append('log', bytes('y'), 0, 1);
    assert.is(text(st.read('log')), 'zy', 'usable after close');
    st.close();
    const again = p.storage(dir, { syncAppends: true });
    assert.is(text(again.read('k')), 'hello', 'the same directory again: the same values');
    again.append('log', bytes('w'), 0, 1);
    assert.is(text(again.read('log')), 'zyw');
    again.close();
    const other = p.storage(dir + '-other');
    assert.is(other.read('k'), null, 'another directory is another store');
    other.close();
  });

  bounded(`${t.name}: gpio`, 20_000, () => {
    const g = t.make().gpio;
    if (t.gpio === 'none') {
      for (const [what, op] of [
        ['chips', () => g.chips()],
        ['read', () => g.read('pinctrl-bcm2711', 0)],
        ['write', () => g.write('pinctrl-bcm2711', 0, 1)],
      ] as [string, () => unknown][]) {
        const f = failure(op);
        assert.is(f.code, 'HF_ERR_UNSUPPORTED', `${what}: ${f.message}`);
      }
      return;
    }
    if (t.gpio === 'any') {
      // A real machine: only look (never drive a real pin from a test).
      const chips = reading('chips', () => g.chips());
      if (!chips.ok) {
        assert.is(failure(() => g.read('no-such-chip-label', 0)).code, 'HF_ERR_UNSUPPORTED');
        return;
      }
      for (const c of chips.value) assert.ok(/^gpiochip\d+$/.test(c.name) && typeof c.label === 'string' && Number.isInteger(c.lines) && c.lines > 0, JSON.stringify(c));
      assert.is(failure(() => g.read('no-such-chip-label', 0)).code, 'HF_ERR_OPTION');
      return;
    }
    const e = t.gpio;
    const chips = g.chips();
    assert.equal(
      chips.map((c) => ({ label: c.label, lines: c.lines })),
      e.chips,
    );
    for (const c of chips) assert.ok(/^gpiochip\d+$/.test(c.name), c.name);
    for (const { label, lines } of e.chips) {
      const line = e.freeLine(label);
      g.write(label, line, 1);
      assert.is(g.read(label, line), 1, `${label} ${line}: write 1, read 1`);
      g.write(label, line, 0);
      assert.is(g.read(label, line), 0, `${label} ${line}: write 0, read 0`);
      e.setInput(label, lines - 1, 1);
      assert.is(g.read(label, lines - 1), 1, `${label} ${lines - 1}: the last line, driven high from outside`);
      e.setInput(label, lines - 1, 0);
      assert.is(g.read(label, lines - 1), 0);
      for (const bad of [lines, lines + 1, 1000]) {
        const f = failure(() => g.read(label, bad));
        assert.is(f.code, 'HF_ERR_OPTION', `${label} line ${bad}`);
        assert.ok(f.message.includes(String(bad)) && f.message.includes(label), f.message);
        assert.is(failure(() => g.write(label, bad, 1)).code, 'HF_ERR_OPTION');
      }
      for (const bad of [-1, 1.5, NaN]) assert.is(failure(() => g.read(label, bad)).code, 'HF_ERR_OPTION', `line ${bad}`);
      assert.is(failure(() => g.write(label, line, 2 as 0 | 1)).code, 'HF_ERR_OPTION', 'value 2');
    }
    const f = failure(() => g.read('no-such-chip', 0));
    assert.is(f.code, 'HF_ERR_OPTION');
    assert.ok(f.message.includes('"no-such-chip"'), f.message);
    assert.is(failure(() => g.write('no-such-chip', 0, 1)).code, 'HF_ERR_OPTION');
    assert.is(failure(() => g.read('', 0)).code, 'HF_ERR_OPTION');
  });
}

bounded('platforms: names, and clock, entropy and crypto that work', 10_000, () => {
  assert.is(hostPlatform.name, 'host');
  assert.is(fakePi().p.name, 'pi');
  assert.is(simBoard().name, 'sim');
  for (const p of [hostPlatform, fakePi().p, simBoard()]) {
    const a = p.clock.now();
    assert.ok(p.clock.now() >= a, `${p.name}: the clock does not go back`);
    const b = new Uint8Array(32);
    p.entropy.fill(b);
    assert.ok(
      b.some((x) => x !== 0),
      `${p.name}: entropy fills`,
    );
    const out = new Uint8Array(34);
    p.crypto.hmac(bytes('key'), bytes('xxdataxx'), 2, 4, out, 1);
    // HMAC-SHA256("key", "data"), a published value.
    assert.is(Buffer.from(out.subarray(1, 33)).toString('hex'), '5031fe3d989c6d1537a013fa6e739da23463fdaec3b70137d828e36ace221bd0', p.name);
  }
});

// ---------------------------------------------------------------------------------------------
// The pi target's readers: their choices and their refusals.

bounded('pi: a tree without the files: every reading is HF_ERR_UNSUPPORTED naming the file', 10_000, () => {
  const root = tmp('empty-root');
  fs.mkdirSync(root, { recursive: true });
  const s = new LinuxSystem({ root, addresses: () => ({}) });
  const cases: [string, () => unknown, string[]][] = [
    ['model', () => s.model(), [path.join(root, 'proc/device-tree/model'), path.join(root, 'sys/class/dmi/id/product_name')]],
    ['cpuTemperature', () => s.cpuTemperature(), [path.join(root, 'sys/class/thermal')]],
    ['memory', () => s.memory(), [path.join(root, 'proc/meminfo')]],
    ['load', () => s.load(), [path.join(root, 'proc/loadavg')]],
    ['uptimeSeconds', () => s.uptimeSeconds(), [path.join(root, 'proc/uptime')]],
    ['interfaces', () => s.interfaces(), [path.join(root, 'sys/class/net')]],
  ];
  for (const [what, fn, files] of cases) {
    const f = failure(fn);
    assert.is(f.code, 'HF_ERR_UNSUPPORTED', what);
    for (const file of files) assert.ok(f.message.includes(file), `${what}: ${f.message} names ${file}`);
  }
  const g = new GpiodGpio({ root, toolDir: fakePi().tools.toolDir });
  const f = failure(() => g.chips());
  assert.is(f.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(f.message.includes(path.join(root, 'dev') + '/gpiochip*'), f.message);
});

bounded('pi: malformed or partial files are HF_ERR_UNSUPPORTED, never a guess', 10_000, () => {
  const root = tree(tmp('bad-root'), {
    'proc/meminfo': 'MemTotal:        3884328 kB\nMemFree:         2409804 kB\n',
    'proc/loadavg': 'garbage\n',
    'proc/uptime': '\n',
    'proc/device-tree/model': Buffer.from('\0'),
    'sys/class/dmi/id/sys_vendor': 'To be filled by O.E.M.\n',
    'sys/class/dmi/id/product_name': 'To be filled by O.E.M.\n',
    'sys/class/dmi/id/product_version': 'To be filled by O.E.M.\n',
    'sys/class/thermal/thermal_zone0/type': 'cpu-thermal\n',
    'sys/class/thermal/thermal_zone0/temp': '-273000\n', // a sensor's "no reading"
    'sys/class/thermal/thermal_zone1/type': 'acpitz\n',
    'sys/class/thermal/thermal_zone1/temp': 'n/a\n',
  });
  const s = new LinuxSystem({ root });
  const mem = failure(() => s.memory());
  assert.is(mem.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(mem.message.includes('MemAvailable') && mem.message.includes(path.join(root, 'proc/meminfo')), mem.message);
  assert.is(failure(() => s.load()).code, 'HF_ERR_UNSUPPORTED');
  assert.is(failure(() => s.uptimeSeconds()).code, 'HF_ERR_UNSUPPORTED');
  assert.is(failure(() => s.model()).code, 'HF_ERR_UNSUPPORTED', 'an empty device-tree model and DMI placeholders name nothing');
  const t = failure(() => s.cpuTemperature());
  assert.is(t.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(t.message.includes('-273000') && t.message.includes('thermal_zone1'), t.message);
});

bounded('pi: model from DMI — vendor, product and a version that names something', 10_000, () => {
  const lenovo = new LinuxSystem({
    root: tree(tmp('lenovo-root'), {
      'sys/class/dmi/id/sys_vendor': 'LENOVO\n',
      'sys/class/dmi/id/product_name': '10T7S0XN00\n',
      'sys/class/dmi/id/product_version': 'ThinkCentre M720q\n',
    }),
  });
  assert.is(lenovo.model(), 'LENOVO 10T7S0XN00 ThinkCentre M720q');
  const wyse = new LinuxSystem({
    root: tree(tmp('wyse-root'), {
      'sys/class/dmi/id/sys_vendor': 'Dell Inc.\n',
      'sys/class/dmi/id/product_name': 'Wyse 5070 Thin Client\n',
      'sys/class/dmi/id/product_version': '1.0\n',
    }),
  });
  assert.is(wyse.model(), 'Dell Inc. Wyse 5070 Thin Client', 'a bare revision is left out');
  // The device tree wins where both are there (an ARM board with DMI from UEFI firmware).
  const both = new LinuxSystem({ root: tree(tmp('both-root'), { 'proc/device-tree/model': Buffer.from('Raspberry Pi 5 Model B Rev 1.0\0'), 'sys/class/dmi/id/product_name': 'Other\n' }) });
  assert.is(both.model(), 'Raspberry Pi 5 Model B Rev 1.0');
});

bounded('pi: thermal zones — the CPU zone first, unreadable and implausible zones passed over', 10_000, () => {
  const root = tree(tmp('thermal-root'), {
    'sys/class/thermal/thermal_zone0/type': 'acpitz\n',
    'sys/class/thermal/thermal_zone0/temp': '25000\n',
    'sys/class/thermal/thermal_zone1/type': 'soc-thermal\n', // no temp file
    'sys/class/thermal/thermal_zone10/type': 'x86_pkg_temp\n',
    'sys/class/thermal/thermal_zone10/temp': '999000\n',
    'sys/class/thermal/thermal_zone2/type': 'cpu_thermal\n',
    'sys/class/thermal/thermal_zone2/temp': '55123\n',
    'sys/class/thermal/cooling_device0/type': 'Processor\n',
  });
  assert.is(new LinuxSystem({ root }).cpuTemperature(), 55.123, 'zone2 (cpu) after zone1 (soc, unreadable); zone10 (999 °C) passed over');
  const onlyAcpi = tree(tmp('acpi-root'), { 'sys/class/thermal/thermal_zone0/type': 'acpitz\n', 'sys/class/thermal/thermal_zone0/temp': '-5000\n' });
  assert.is(new LinuxSystem({ root: onlyAcpi }).cpuTemperature(), -5, 'no CPU zone: the first readable one');
});

bounded('pi: disk through statfs, and HF_ERR_UNSUPPORTED where this Node has no statfsSync', 10_000, () => {
  const d = diskUsage(os.tmpdir());
  const s = fs.statfsSync(os.tmpdir());
  assert.is(d.totalBytes, s.blocks * s.bsize);
  assert.ok(d.freeBytes <= d.totalBytes);
  const missing = failure(() => diskUsage(os.tmpdir(), null));
  assert.is(missing.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(missing.message.includes('statfsSync'), missing.message);
  assert.is(failure(() => new LinuxSystem({ statfs: null }).disk('/')).code, 'HF_ERR_UNSUPPORTED');
  assert.is(failure(() => diskUsage(path.join(TMP, 'no', 'such'))).code, 'HF_ERR_OPTION');
  assert.is(failure(() => diskUsage('')).code, 'HF_ERR_OPTION');
  assert.is(failure(() => new LinuxSystem({ root: 'relative' })).code, 'HF_ERR_OPTION');
});

test('pi: prefix lengths from netmasks', () => {
  assert.is(prefixOf('255.255.255.0'), 24);
  assert.is(prefixOf('255.255.0.0'), 16);
  assert.is(prefixOf('0.0.0.0'), 0);
  assert.is(prefixOf('255.255.255.255'), 32);
  assert.is(prefixOf('ffff:ffff:ffff:ffff::'), 64);
  assert.is(prefixOf('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 128);
  assert.is(prefixOf('::'), 0);
  assert.is(prefixOf('255.0.255.0'), null);
  assert.is(prefixOf('nonsense'), null);
});

test('host: interfaces from node:os — all-zero MAC is null, addresses keep their prefix', () => {
  assert.equal(osInterfaces(PI_ADDRESSES), [
    { name: 'lo', mac: null, addresses: ['127.0.0.1/8', '::1/128'], up: true },
    { name: 'eth0', mac: 'dc:a6:32:01:02:03', addresses: ['192.168.1.20/24', 'fe80::dea6:32ff:fe01:203/64'], up: true },
  ]);
});

bounded('host on Linux: memory, load, uptime and interfaces are real readings', 10_000, () => {
  if (process.platform !== 'linux') return;
  const s = hostPlatform.system;
  const m = s.memory();
  assert.ok(m.totalBytes > 0 && m.availableBytes <= m.totalBytes);
  assert.is(s.load().length, 3);
  assert.ok(s.uptimeSeconds() > 0);
  assert.ok(s.interfaces().length >= 1, 'at least loopback');
});

// ---------------------------------------------------------------------------------------------
// libgpiod 1.6 output formats and the GPIO driver over the tools.

test('gpiod formats: gpiodetect, gpioinfo (padding and overflow), gpioget, version, errors', () => {
  assert.equal(parseGpiodetect('gpiochip0 [pinctrl-bcm2711] (58 lines)\ngpiochip1 [raspberrypi-exp-gpio] (8 lines)\n'), [
    { name: 'gpiochip0', label: 'pinctrl-bcm2711', lines: 58 },
    { name: 'gpiochip1', label: 'raspberrypi-exp-gpio', lines: 8 },
  ]);
  assert.equal(
    parseGpiodetect('gpiochip4 [gpio-brcmstb@107d508500] (32 lines)\ngpiochip2 [INT34BB:00] (312 lines)\ngpiochip9 [odd [label]] (4 lines)\n').map((c) => c.label),
    ['gpio-brcmstb@107d508500', 'INT34BB:00', 'odd [label]'],
  );
  assert.equal(parseGpiodetect(''), [], 'no chip: no output');
  assert.throws(() => parseGpiodetect('gpiochip0 - pinctrl-bcm2711 58\n'));

  // Rows as libgpiod 1.6's printf/prinfo lay them out, written out by hand ...
  const rows = [
    '\tline   0:     "ID_SDA"       unused   input  active-high ',
    '\tline  17:     "GPIO17"       unused  output  active-high ',
    '\tline   8:  "SPI_CE0_N"   "spi0 CS0"  output  active-high [used]',
    '\tline   2: "STATUS_LED_G_CLK" "led0" output active-high [used]',
    '\tline   7:      unnamed       unused   input   active-low [used pull-up]',
    '\tline 100:      unnamed       unused   input  active-high [bias-disabled]',
  ];
  // ... and the test's formatter (used by the fake gpioinfo) agrees with them.
  assert.is(gpioinfoRow(0, 'ID_SDA', null, 'input', false, []), rows[0]);
  assert.is(gpioinfoRow(17, 'GPIO17', null, 'output', false, []), rows[1]);
  assert.is(gpioinfoRow(8, 'SPI_CE0_N', 'spi0 CS0', 'output', false, ['used']), rows[2]);
  assert.is(gpioinfoRow(2, 'STATUS_LED_G_CLK', 'led0', 'output', false, ['used']), rows[3]);
  assert.is(gpioinfoRow(7, null, null, 'input', true, ['used', 'pull-up']), rows[4]);
  assert.is(gpioinfoRow(100, null, null, 'input', false, ['bias-disabled']), rows[5]);
  const info = parseGpioinfo(`gpiochip0 - 101 lines:\n${rows.join('\n')}\n`);
  assert.equal(info.get('gpiochip0'), [
    { offset: 0, name: 'ID_SDA', consumer: null, direction: 'input', activeLow: false, flags: [] },
    { offset: 17, name: 'GPIO17', consumer: null, direction: 'output', activeLow: false, flags: [] },
    { offset: 8, name: 'SPI_CE0_N', consumer: 'spi0 CS0', direction: 'output', activeLow: false, flags: ['used'] },
    { offset: 2, name: 'STATUS_LED_G_CLK', consumer: 'led0', direction: 'output', activeLow: false, flags: ['used'] },
    { offset: 7, name: null, consumer: null, direction: 'input', activeLow: true, flags: ['used', 'pull-up'] },
    { offset: 100, name: null, consumer: null, direction: 'input', activeLow: false, flags: ['bias-disabled'] },
  ]);
  assert.throws(() => parseGpioinfo('\tline   0: unnamed unused input active-high\n'), /unrecognised/, 'a row before any header');

  assert.equal(parseGpioget('1\n', 1), [1]);
  assert.equal(parseGpioget('1 0 1\n', 3), [1, 0, 1]);
  assert.throws(() => parseGpioget('"17"=active\n', 1), /expected/, 'libgpiod 2 output');
  assert.throws(() => parseGpioget('', 1));
  assert.throws(() => parseGpioget('1 0\n', 1));

  assert.equal(parseVersion(VERSION('gpiodetect')), { major: 1, minor: 6, patch: 3, text: 'v1.6.3' });
  assert.equal(parseVersion('gpiodetect (libgpiod) v2.1\nCopyright'), { major: 2, minor: 1, patch: 0, text: 'v2.1' });
  assert.is(parseVersion('nothing'), null);
  assert.is(toolMessage('/usr/bin/gpioget: error reading GPIO values: Device or resource busy\n'), 'error reading GPIO values: Device or resource busy');
});

bounded('pi gpio: chips by label, the tools get a /dev path (never a number), gpioset exits at once', 20_000, () => {
  const { p, tools } = fakePi();
  tools.clearCalls();
  p.gpio.write('pinctrl-bcm2711', 17, 1);
  assert.is(tools.level('gpiochip0', 17), '1');
  p.gpio.write('raspberrypi-exp-gpio', 0, 1);
  assert.is(tools.level('gpiochip1', 0), '1');
  const calls = tools.calls();
  const dev0 = path.join(p.gpio.root, 'dev', 'gpiochip0');
  const dev1 = path.join(p.gpio.root, 'dev', 'gpiochip1');
  assert.ok(calls.includes(`gpioset --mode=exit ${dev0} 17=1`), calls.join('\n'));
  assert.ok(calls.includes(`gpioset --mode=exit ${dev1} 0=1`), calls.join('\n'));
  for (const c of calls.filter((l) => l.startsWith('gpioget') || l.startsWith('gpioset'))) {
    const chipArg = c
      .split(' ')
      .slice(1)
      .find((a) => !a.startsWith('-'));
    assert.ok(chipArg?.startsWith(path.join(p.gpio.root, 'dev') + '/gpiochip'), `the chip is given by path: ${c}`);
  }
  // Chips were known already: writing needed no new gpiodetect.
  assert.is(calls.filter((c) => c.startsWith('gpiodetect')).length, 0, calls.join('\n'));
  tools.clearCalls();
  assert.is(failure(() => p.gpio.read('no-such-chip', 0)).code, 'HF_ERR_OPTION');
  assert.equal(tools.calls(), ['gpiodetect '], 'an unknown label detects afresh once');
});

bounded('pi gpio: a chip that appears later (a USB adapter) is found by label', 20_000, () => {
  const root = fakePiTree(tmp('hotplug-root'));
  const tools = fakeGpiod(tmp('hotplug-gpiod'), PI_CHIPS.slice(0, 1));
  const g = new GpiodGpio({ root, toolDir: tools.toolDir });
  assert.equal(
    g.chips().map((c) => c.label),
    ['pinctrl-bcm2711'],
  );
  assert.is(failure(() => g.read('ftdi-cbus', 0)).code, 'HF_ERR_OPTION');
  tools.setChips([...PI_CHIPS.slice(0, 1), { name: 'gpiochip2', label: 'ftdi-cbus', lines: 4 }]);
  tools.setInput('gpiochip2', 3, 1);
  assert.is(g.read('ftdi-cbus', 3), 1);
  assert.equal(tools.calls().filter((c) => c.startsWith('gpiodetect --version')).length, 1, 'the version is checked once');
});

bounded('pi gpio: a line held by a driver is HF_ERR_UNSUPPORTED naming the holder', 20_000, () => {
  const { p } = fakePi();
  const f = failure(() => p.gpio.read('pinctrl-bcm2711', 8));
  assert.is(f.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(f.message.includes('"spi0 CS0"') && f.message.includes('line 8'), f.message);
  const k = failure(() => p.gpio.write('raspberrypi-exp-gpio', 6, 1));
  assert.is(k.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(k.message.includes('by the kernel'), k.message);
  const rows = p.gpio.lines('pinctrl-bcm2711');
  assert.is(rows.length, 58);
  assert.equal(rows[8], { offset: 8, name: 'SPI_CE0_N', consumer: 'spi0 CS0', direction: 'output', activeLow: false, flags: ['used'] });
  assert.equal(rows[17].name, 'GPIO17');
  assert.equal(rows[57].name, null);
});

bounded('pi gpio: missing tools, libgpiod 2 tools, no permission, bad output, a hung tool, twin labels', 30_000, () => {
  const root = fakePiTree(tmp('fail-root'));
  const empty = tmp('no-tools');
  fs.mkdirSync(empty, { recursive: true });
  const missing = failure(() => new GpiodGpio({ root, toolDir: empty }).chips());
  assert.is(missing.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(missing.message.includes(path.join(empty, 'gpiodetect')) && missing.message.includes('apt-get install gpiod'), missing.message);

  const v2 = fakeGpiod(tmp('v2-gpiod'), PI_CHIPS, { version: '2.1' });
  const two = failure(() => new GpiodGpio({ root, toolDir: v2.toolDir }).chips());
  assert.is(two.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(two.message.includes('v2.1') && two.message.includes('1.x'), two.message);

  const denied = fakeGpiod(tmp('denied-gpiod'), PI_CHIPS);
  fs.writeFileSync(
    path.join(denied.toolDir, 'gpiodetect'),
    `#!/bin/sh\ncase "$1" in --version) printf '%s' '${VERSION('gpiodetect')}'; exit 0;; esac\necho "$0: unable to access GPIO chips: Permission denied" >&2\nexit 1\n`,
    { mode: 0o755 },
  );
  const perm = failure(() => new GpiodGpio({ root, toolDir: denied.toolDir }).chips());
  assert.is(perm.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(perm.message.includes('permission denied') && perm.message.includes('gpio'), perm.message);

  const odd = fakeGpiod(tmp('odd-gpiod'), PI_CHIPS);
  fs.writeFileSync(path.join(odd.data, 'gpiodetect.txt'), 'chip0: 58 lines\n');
  const bad = failure(() => new GpiodGpio({ root, toolDir: odd.toolDir }).chips());
  assert.is(bad.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(bad.message.includes('chip0: 58 lines'), bad.message);

  const hung = fakeGpiod(tmp('hung-gpiod'), PI_CHIPS);
  fs.writeFileSync(path.join(hung.toolDir, 'gpioget'), '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
  const g = new GpiodGpio({ root, toolDir: hung.toolDir, timeoutMs: 300 });
  const t0 = Date.now();
  const late = failure(() => g.read('pinctrl-bcm2711', 17));
  assert.ok(Date.now() - t0 < 5000, `gave up after ${Date.now() - t0} ms`);
  assert.is(late.code, 'HF_ERR_UNSUPPORTED');
  assert.ok(late.message.includes('300 ms'), late.message);

  const twins = fakeGpiod(tmp('twin-gpiod'), [
    { name: 'gpiochip0', label: 'mcp23017', lines: 16 },
    { name: 'gpiochip1', label: 'mcp23017', lines: 16 },
  ]);
  const tw = failure(() => new GpiodGpio({ root, toolDir: twins.toolDir }).read('mcp23017', 0));
  assert.is(tw.code, 'HF_ERR_OPTION');
  assert.ok(tw.message.includes('gpiochip0') && tw.message.includes('gpiochip1'), tw.message);

  for (const o of [{ root: 'rel' }, { toolDir: 'bin' }, { timeoutMs: 0 }, { timeoutMs: 1.5 }]) assert.is(failure(() => new GpiodGpio(o)).code, 'HF_ERR_OPTION', JSON.stringify(o));
});

// ---------------------------------------------------------------------------------------------
// The sim target.

bounded('sim: temperature and load move with the virtual time, plausibly, and replay from the seed', 20_000, () => {
  const run = (seed: number): { temps: number[]; loads: [number, number, number][]; up: number[] } => {
    const clock = new SimClock(0);
    const p = simPlatform({ seed, clock });
    const temps: number[] = [];
    const loads: [number, number, number][] = [];
    const up: number[] = [];
    for (let minute = 0; minute < 6 * 60; minute++) {
      clock.runUntil(minute * 60_000);
      temps.push(p.system.cpuTemperature());
      loads.push(p.system.load());
      up.push(p.system.uptimeSeconds());
    }
    return { temps, loads, up };
  };
  const a = run(7);
  assert.equal(run(7), a, 'the same seed replays the same readings');
  const b = run(8);
  assert.not.equal(b.temps, a.temps, 'another seed, another board');
  const min = Math.min(...a.temps);
  const max = Math.max(...a.temps);
  assert.ok(min >= 30 - 0.25 && max <= 30 + 35 + 0.25, `temperature ${min}..${max} within ambient..ambient+heat`);
  assert.ok(max - min > 2, `temperature moves: ${min}..${max}`);
  // A heat sink's lag: a board going from idle to full load warms over minutes, not in one step.
  const clock = new SimClock(0);
  const fine = simPlatform({ seed: 7, clock });
  let last = fine.system.cpuTemperature();
  for (let s = 5; s <= 3600; s += 5) {
    clock.runUntil(s * 1000);
    const now = fine.system.cpuTemperature();
    assert.ok(Math.abs(now - last) < 2, `no jump at ${s} s: ${last} -> ${now}`);
    last = now;
  }
  const spread = (xs: number[]): number => Math.max(...xs) - Math.min(...xs);
  const l1 = a.loads.map((l) => l[0]);
  const l15 = a.loads.map((l) => l[2]);
  for (const l of a.loads) for (const x of l) assert.ok(x >= 0 && x <= 4, `load ${x} within 0..cores`);
  assert.ok(spread(l1) > 0.5, `the 1-minute load moves: ${spread(l1)}`);
  assert.ok(spread(l15) < spread(l1), 'the 15-minute load is smoother than the 1-minute one');
  assert.is(a.up[0], 120);
  assert.is(a.up[60], 120 + 3600, 'uptime follows the virtual clock');
  // A reading does not move time, and reading twice at one time gives one answer.
  const p = simPlatform({ seed: 7 });
  const t = p.clock.now();
  assert.is(p.system.cpuTemperature(), p.system.cpuTemperature());
  assert.is(p.clock.now(), t);
});

bounded('sim: model, memory, disk and interface from the configuration; bad configuration is HF_ERR_OPTION', 10_000, () => {
  const p = simPlatform({ seed: 3, system: { memory: { totalBytes: 2 * GiB, availableBytes: GiB }, disk: { totalBytes: 16e9, freeBytes: 1e9 } } });
  assert.is(p.system.model(), 'holdfast sim board');
  assert.equal(p.system.memory(), { totalBytes: 2 * GiB, availableBytes: GiB });
  assert.equal(p.system.disk('/var/lib/holdfast'), { totalBytes: 16e9, freeBytes: 1e9 });
  const ifs = p.system.interfaces();
  assert.is(ifs.length, 1);
  assert.is(ifs[0].name, 'eth0');
  assert.match(ifs[0].mac!, /^02(:[0-9a-f]{2}){5}$/, 'a locally administered MAC');
  assert.equal(simPlatform({ seed: 3 }).system.interfaces(), ifs, 'from the seed');
  ifs[0].addresses.push('x');
  assert.is(p.system.interfaces()[0].addresses.length, 2, 'the caller’s copy');
  for (const system of [
    { memory: { totalBytes: GiB, availableBytes: 2 * GiB } },
    { disk: { totalBytes: 1, freeBytes: 2 } },
    { cores: 0 },
    { ambientC: NaN },
    { iface: { name: '', mac: null, addresses: [], up: true } },
  ]) {
    assert.is(failure(() => simPlatform({ system })).code, 'HF_ERR_OPTION', JSON.stringify(system));
  }
  assert.is(failure(() => simPlatform({ seed: -1 })).code, 'HF_ERR_OPTION');
});

bounded('sim: entropy replays from the seed; storage survives reopening and keeps MemoryStorage’s behaviour', 10_000, () => {
  const fill = (seed: number): string => {
    const b = new Uint8Array(16);
    simPlatform({ seed }).entropy.fill(b);
    return Buffer.from(b).toString('hex');
  };
  assert.is(fill(5), fill(5));
  assert.is.not(fill(5), fill(6));
  const p = simPlatform();
  const st = p.storage('/data');
  st.write('j', bytes('abc'));
  st.memory.cutTail('j', 1); // a torn tail, as MemoryStorage models it
  assert.is(text(p.storage('/data').read('j')), 'ab');
  st.memory.broken = true;
  assert.is(failure(() => st.read('j')).code, 'HF_ERR_STORAGE');
  assert.is(failure(() => p.storage('')).code, 'HF_ERR_OPTION');
});

bounded('sim gpio: configuration is checked; a board without chips is HF_ERR_UNSUPPORTED', 10_000, () => {
  assert.is(
    failure(
      () =>
        new SimGpio({
          chips: [
            { label: 'a', lines: 4 },
            { label: 'a', lines: 4 },
          ],
        }),
    ).code,
    'HF_ERR_OPTION',
  );
  assert.is(failure(() => new SimGpio({ chips: [{ label: 'a', lines: 0 }] })).code, 'HF_ERR_OPTION');
  assert.is(failure(() => new SimGpio({ chips: [{ label: '', lines: 4 }] })).code, 'HF_ERR_OPTION');
  const none = new SimGpio({ chips: [] });
  for (const op of [() => none.chips(), () => none.read('a', 0), () => none.write('a', 0, 1)]) assert.is(failure(op).code, 'HF_ERR_UNSUPPORTED');
  const g = new SimGpio();
  assert.equal(g.chips(), [{ name: 'gpiochip0', label: 'sim-gpio', lines: 32 }]);
  g.write('sim-gpio', 5, 1);
  assert.equal(g.peek('sim-gpio', 5), { level: 1, output: true });
  g.setInput('sim-gpio', 5, 0);
  assert.equal(g.peek('sim-gpio', 5), { level: 0, output: false });
  assert.is(g.read('sim-gpio', 5), 0, 'the outside drove it last');
  assert.is(failure(() => g.setInput('sim-gpio', 32, 1)).code, 'HF_ERR_OPTION');
});

// ---------------------------------------------------------------------------------------------
// A real simulated GPIO chip (gpio-sim over configfs), where this kernel offers one.

bounded('pi gpio against a real gpio-sim chip (skipped where the kernel has none)', 30_000, () => {
  const cfg = '/sys/kernel/config/gpio-sim';
  const tools = '/usr/bin';
  if (!fs.existsSync(cfg)) {
    console.log(`\n  [skipped] gpio-sim: no ${cfg} (needs CONFIG_GPIO_SIM and configfs: modprobe gpio-sim; mount -t configfs none /sys/kernel/config)`);
    return;
  }
  if (!fs.existsSync(path.join(tools, 'gpiodetect'))) {
    console.log('\n  [skipped] gpio-sim: no /usr/bin/gpiodetect (apt-get install gpiod)');
    return;
  }
  const dev = path.join(cfg, `holdfast-${process.pid}`);
  const label = `holdfast-sim-${process.pid}`;
  try {
    fs.mkdirSync(dev);
    fs.mkdirSync(path.join(dev, 'bank0'));
    fs.writeFileSync(path.join(dev, 'bank0', 'num_lines'), '8');
    fs.writeFileSync(path.join(dev, 'bank0', 'label'), label);
    fs.writeFileSync(path.join(dev, 'live'), '1');
  } catch (e) {
    console.log(`\n  [skipped] gpio-sim: cannot create a chip (${(e as NodeJS.ErrnoException).code ?? e})`);
    try {
      fs.rmdirSync(path.join(dev, 'bank0'));
      fs.rmdirSync(dev);
    } catch {
      // nothing made
    }
    return;
  }
  try {
    const chipName = fs.readFileSync(path.join(dev, 'bank0', 'chip_name'), 'utf8').trim();
    const devName = fs.readFileSync(path.join(dev, 'dev_name'), 'utf8').trim();
    const pull = (line: number, v: 'pull-up' | 'pull-down'): void => fs.writeFileSync(`/sys/devices/platform/${devName}/${chipName}/sim_gpio${line}/pull`, v);
    const g = new GpiodGpio();
    const chip = g.chips().find((c) => c.label === label);
    assert.ok(chip !== undefined && chip.name === chipName && chip.lines === 8, JSON.stringify(g.chips()));
    pull(3, 'pull-up');
    assert.is(g.read(label, 3), 1);
    pull(3, 'pull-down');
    assert.is(g.read(label, 3), 0);
    g.write(label, 5, 1); // released at once: gpio-sim returns the line to its pull
    assert.is(g.read(label, 5), 0);
    assert.is(failure(() => g.read(label, 8)).code, 'HF_ERR_OPTION');
  } finally {
    fs.writeFileSync(path.join(dev, 'live'), '0');
    fs.rmdirSync(path.join(dev, 'bank0'));
    fs.rmdirSync(dev);
  }
});

test.run();
