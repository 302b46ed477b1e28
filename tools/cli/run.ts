/**
 * Runs one of a set of commands: `<command> [flags]`. Every command takes --help. A bad flag or
 * setting prints one line with its error code and exits with status 2; a failure at run time exits 1.
 */
import { isHfError } from '../../firmware/errors';

export interface Command {
  run: (argv: string[]) => Promise<number>;
  about: string;
}

function help(prog: string, commands: Record<string, Command>): string {
  const w = Math.max(...Object.keys(commands).map((k) => k.length)) + 2;
  return [`usage: ${prog} <command> [flags]   (${prog} <command> --help for its flags)`, '', ...Object.entries(commands).map(([k, c]) => `  ${k.padEnd(w)}${c.about}`), ''].join('\n');
}

export async function runCommand(prog: string, commands: Record<string, Command>, argv: string[]): Promise<void> {
  // Output piped into `head` and closed early is not an error of ours.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(help(prog, commands));
    process.exitCode = cmd === undefined ? 2 : 0;
    return;
  }
  const c = commands[cmd];
  if (c === undefined) {
    process.stderr.write(`${prog}: unknown command ${JSON.stringify(cmd)}\n${help(prog, commands)}`);
    process.exitCode = 2;
    return;
  }
  try {
    process.exitCode = await c.run(rest);
  } catch (e) {
    if (!isHfError(e)) throw e;
    process.stderr.write(`${prog} ${cmd}: ${e.code}: ${e.message}\n`);
    process.exitCode = e.code === 'HF_ERR_OPTION' ? 2 : 1;
  }
}
