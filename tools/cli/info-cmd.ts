/**
 * `info`: what the board says about itself through the target's HAL (model, temperature, memory,
 * load, uptime, disk, interfaces, GPIO chips). A reading the board cannot give shows its error code.
 * With --json, one JSON object: each reading, or {"error": code}.
 */
import { platform } from '#platform';
import { isHfError } from '../../firmware/errors';
import { type Flag, parseArgs, usage } from './args';

const FLAGS: Flag[] = [
  { name: 'json', type: 'bool', help: 'one JSON object instead of a table' },
  { name: 'disk', meta: 'PATH', help: 'the filesystem to report (default /)' },
];

function reading(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    if (isHfError(e)) return { error: e.code, message: e.message };
    throw e;
  }
}

export async function infoCommand(argv: string[]): Promise<number> {
  const { values: v, help } = parseArgs(argv, FLAGS);
  if (help) {
    process.stdout.write(usage('info [--json] [--disk PATH]', 'Prints what this board reports through the holdfast HAL.', FLAGS));
    return 0;
  }
  const s = platform.system;
  const info: Record<string, unknown> = {
    target: platform.name,
    model: reading(() => s.model()),
    cpu_temperature_c: reading(() => s.cpuTemperature()),
    memory: reading(() => s.memory()),
    load: reading(() => s.load()),
    uptime_s: reading(() => s.uptimeSeconds()),
    disk: reading(() => s.disk((v.disk as string | undefined) ?? '/')),
    interfaces: reading(() => s.interfaces()),
    gpio_chips: reading(() => platform.gpio.chips()),
    node: process.version,
    arch: process.arch,
  };
  if (v.json === true) {
    process.stdout.write(JSON.stringify(info) + '\n');
    return 0;
  }
  for (const [k, val] of Object.entries(info)) {
    const failed = val !== null && typeof val === 'object' && 'error' in (val as object) ? (val as { error: string; message: string }) : null;
    const shown = failed !== null ? `(${failed.error}: ${failed.message})` : JSON.stringify(val);
    process.stdout.write(`${k.padEnd(18)} ${shown}\n`);
  }
  return 0;
}
