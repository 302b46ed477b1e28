/** Entry of dist/holdfast-gateway.js (`node holdfast-gateway.js gateway ...`). */
import { gatewayCommand } from './gateway-cmd';
import { type Command, runCommand } from './run';

const COMMANDS: Record<string, Command> = {
  gateway: { run: gatewayCommand, about: 'serve devices over HTTP and direct TCP' },
};

void runCommand('holdfast-gateway.js', COMMANDS, process.argv.slice(2), { exitOnUncaught: true });
