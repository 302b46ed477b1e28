/**
 * The holdfast command line: `holdfast <command> [flags]`. Every command takes --help. A bad flag or
 * setting prints one line with its error code and exits with status 2; a failure at run time exits 1.
 */
import { isHfError } from '../../firmware/errors';
import { deviceCommand } from './device-cmd';
import { gatewayCommand } from './gateway-cmd';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; about: string }> = {
  gateway: { run: gatewayCommand, about: 'serve devices over HTTP and direct TCP' },
  device: { run: deviceCommand, about: 'keep a session to a gateway and forward local ports through it' },
};

function help(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length)) + 2;
  return [
    'usage: holdfast <command> [flags]   (holdfast <command> --help for its flags)',
    '',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}${c.about}`),
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(help());
    process.exitCode = cmd === undefined ? 2 : 0;
    return;
  }
  const c = COMMANDS[cmd];
  if (c === undefined) {
    process.stderr.write(`holdfast: unknown command ${JSON.stringify(cmd)}\n${help()}`);
    process.exitCode = 2;
    return;
  }
  try {
    process.exitCode = await c.run(rest);
  } catch (e) {
    if (!isHfError(e)) throw e;
    process.stderr.write(`holdfast ${cmd}: ${e.message}\n`);
    process.exitCode = e.code === 'HF_ERR_OPTION' ? 2 : 1;
  }
}
