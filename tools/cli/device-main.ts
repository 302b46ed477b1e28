/** Entry of dist/holdfast-device.js: the commands a board runs (`node holdfast-device.js <command>`). */
import { benchCommand } from './bench-cmd';
import { deviceCommand } from './device-cmd';
import { infoCommand } from './info-cmd';
import { type Command, runCommand } from './run';
import { statusCommand } from './status-cmd';

const COMMANDS: Record<string, Command> = {
  device: { run: deviceCommand, about: 'keep a session to a gateway and forward local ports through it' },
  info: { run: infoCommand, about: 'print what this board reports through the HAL (model, temperature, memory, ...)' },
  bench: { run: benchCommand, about: 'measure size, start, round trips, rates and memory against a gateway run with --bench' },
  status: { run: statusCommand, about: "print a device's state and counters from its status file (--state DIR or --status FILE)" },
};

void runCommand('holdfast-device.js', COMMANDS, process.argv.slice(2), { exitOnUncaught: true });
