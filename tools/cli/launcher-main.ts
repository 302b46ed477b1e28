/**
 * Entry of dist/holdfast-launcher.js: runs the device bundle under the launcher
 * (targets/host/device/launcher.ts), which makes `update` possible and rolls a bad bundle back.
 *
 *   node holdfast-launcher.js --dir DIR [--bundle holdfast-device.js] [--update-confirm-ms 60000] -- device --config FILE
 *
 * Everything after `--` is the device program's command line (after the bundle). Stops on SIGTERM or
 * SIGINT, stopping the device first. Exit status as tools/cli/run.ts says.
 */
import { ErrorCode, hfError } from '../../firmware/errors';
import { Launcher, LAUNCHER_DEFAULTS } from '../../targets/host/device/launcher';
import { createLog, type LogFormat, type LogLevel } from '../../targets/node/log';
import { type Flag, parseArgs, usage } from './args';
import { LOG_FLAGS, onSignals } from './common';
import { failureLine } from './run';

const FLAGS: Flag[] = [
  { name: 'dir', meta: 'DIR', help: "the launcher's directory: the bundles it keeps and its state (required; e.g. PREFIX/launcher)" },
  { name: 'bundle', meta: 'FILE', help: 'the device bundle to take in: needed the first time; taken in again whenever the file changes (a new flash)' },
  {
    name: 'update-confirm-ms',
    type: 'number',
    meta: 'MS',
    help: `how long a bundle installed by update has to open a session before the previous one is put back (default ${LAUNCHER_DEFAULTS.updateConfirmMs})`,
  },
  { name: 'kill-grace-ms', type: 'number', meta: 'MS', help: `how long the device has to stop after SIGTERM before SIGKILL (default ${LAUNCHER_DEFAULTS.killGraceMs})` },
  ...LOG_FLAGS,
];

const ABOUT = `Runs the device bundle as its child, starts it again when it ends, and tries a bundle that
update staged: if the new one does not open a session within --update-confirm-ms, it is stopped and the
previous one runs again (the update is answered HF_ERR_ROLLED_BACK).`;

async function main(argv: string[]): Promise<number> {
  const cut = argv.indexOf('--');
  const own = cut < 0 ? argv : argv.slice(0, cut);
  const args = cut < 0 ? [] : argv.slice(cut + 1);
  const { values: v, help, rest } = parseArgs(own, FLAGS);
  if (help) {
    process.stdout.write(usage('holdfast-launcher.js --dir DIR [--bundle holdfast-device.js] [--update-confirm-ms MS] -- device --config FILE', ABOUT, FLAGS));
    return 0;
  }
  if (rest.length > 0) throw hfError(ErrorCode.OPTION, `unexpected argument ${JSON.stringify(rest[0])} (the device's command line goes after --)`);
  if (typeof v.dir !== 'string') throw hfError(ErrorCode.OPTION, '--dir DIR is required');
  if (args.length === 0) throw hfError(ErrorCode.OPTION, "the device's command line is missing: add -- device --config FILE");
  const log = createLog({ name: 'launcher', format: (v.log as LogFormat) ?? 'text', level: (v['log-level'] as LogLevel) ?? 'info' });
  const launcher = new Launcher({
    dir: v.dir,
    args,
    bundle: (v.bundle as string | undefined) ?? null,
    updateConfirmMs: v['update-confirm-ms'] as number | undefined,
    killGraceMs: v['kill-grace-ms'] as number | undefined,
    log,
  });
  const stopped = onSignals(() => launcher.stop());
  launcher.start();
  await stopped;
  return 0;
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (e) => {
    const f = failureLine('holdfast', 'launcher', e, process.env.HOLDFAST_DEBUG === '1');
    process.stderr.write(f.line);
    process.exit(f.status);
  },
);
