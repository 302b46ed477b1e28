/** `bin/holdfast`: every command, from a checkout. */
import { auditCommand } from './audit-cmd';
import { benchCommand } from './bench-cmd';
import { ctlCommand } from './ctl-cmd';
import { deviceCommand } from './device-cmd';
import { flashCommand } from './flash-cmd';
import { infoCommand } from './info-cmd';
import { operatorCommand } from './operator-cmd';
import { gatewayCommand } from './gateway-cmd';
import { type Command, runCommand } from './run';
import { statusCommand } from './status-cmd';

export const COMMANDS: Record<string, Command> = {
  gateway: { run: gatewayCommand, about: 'serve devices over HTTP and direct TCP' },
  device: { run: deviceCommand, about: 'keep a session to a gateway and forward local ports through it' },
  info: { run: infoCommand, about: 'print what this board reports through the HAL (model, temperature, memory, ...)' },
  flash: { run: flashCommand, about: 'install the device on a board over ssh, start it and wait for its session' },
  bench: { run: benchCommand, about: 'measure size, start, round trips, rates and memory against a gateway run with --bench' },
  status: { run: statusCommand, about: "print a device's state and counters from its status file (--state DIR or --status FILE)" },
  operator: { run: operatorCommand, about: "add and list the operators of the gateway's web console and API (in its --data DIR)" },
  audit: { run: auditCommand, about: "verify the gateway's audit log (its hash chain), or export it as JSON lines" },
  ctl: { run: (argv) => ctlCommand(argv), about: "list devices, run jobs and follow them, read the audit log: the gateway's management API with a token" },
};

export function main(argv: string[]): Promise<void> {
  return runCommand('holdfast', COMMANDS, argv, { exitOnUncaught: true });
}
