/**
 * Runs one of a set of commands: `<command> [flags]`. Every command takes --help. Every failure ends
 * with one line on stderr, `<prog> <command>: HF_ERR_...: what and which value`, and an exit status:
 *   0   done (or stopped by SIGINT/SIGTERM)
 *   1   a failure at run time (HF_ERR_CONNECT: a port in use, HF_ERR_STORAGE: the state directory, ...)
 *   2   a bad flag, setting or file given (HF_ERR_OPTION), or an unknown command
 *   70  a bug of holdfast (an error without a code): one line, the stack only with --debug or
 *       HOLDFAST_DEBUG=1
 *   130 a second signal while stopping
 */
import { type HfError, isHfError } from '../../firmware/errors';

/** Exit status for a failure (see above). */
export const EXIT = { OK: 0, FAILED: 1, OPTION: 2, INTERNAL: 70 } as const;

export interface RunOptions {
  /**
   * Errors thrown outside the command's own promise (from a socket's or timer's callback) end the
   * process with the same one line (default false: for entry points, not for a test's process).
   */
  exitOnUncaught?: boolean;
}

/** A message on one line (a JSON parser's message may quote the offending text, newlines and all). */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** The one line for a failure, and its exit status. */
export function failureLine(prog: string, cmd: string, e: unknown, debug: boolean): { line: string; status: number } {
  if (isHfError(e)) {
    const he = e as HfError;
    return { line: `${prog} ${cmd}: ${he.code}: ${oneLine(he.message)}\n`, status: he.code === 'HF_ERR_OPTION' ? EXIT.OPTION : EXIT.FAILED };
  }
  const text = oneLine(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  const more = debug ? `\n${e instanceof Error ? e.stack : ''}` : ' (a bug of holdfast; --debug or HOLDFAST_DEBUG=1 shows the stack)';
  return { line: `${prog} ${cmd}: internal error: ${text}${more}\n`, status: EXIT.INTERNAL };
}

export interface Command {
  run: (argv: string[]) => Promise<number>;
  about: string;
}

function help(prog: string, commands: Record<string, Command>): string {
  const w = Math.max(...Object.keys(commands).map((k) => k.length)) + 2;
  return [`usage: ${prog} <command> [flags]   (${prog} <command> --help for its flags)`, '', ...Object.entries(commands).map(([k, c]) => `  ${k.padEnd(w)}${c.about}`), ''].join('\n');
}

export async function runCommand(prog: string, commands: Record<string, Command>, argv: string[], opts: RunOptions = {}): Promise<void> {
  // Output piped into `head` and closed early is not an error of ours.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const debug = argv.includes('--debug') || process.env.HOLDFAST_DEBUG === '1';
  const [cmd, ...rest] = argv.filter((a) => a !== '--debug');
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
  if (opts.exitOnUncaught === true) {
    const die = (e: unknown): void => {
      const f = failureLine(prog, cmd, e, debug);
      process.stderr.write(f.line);
      process.exit(f.status);
    };
    process.on('uncaughtException', die);
    process.on('unhandledRejection', die);
  }
  try {
    process.exitCode = await c.run(rest);
  } catch (e) {
    const f = failureLine(prog, cmd, e, debug);
    process.stderr.write(f.line);
    process.exitCode = f.status;
    // An entry point ends here, whatever sockets or timers the command left behind.
    if (opts.exitOnUncaught === true) process.exit(f.status);
  }
}
