/**
 * The web console's files (targets/host/gateway/console/: index.html, console.js, operators.js,
 * console.css: plain files the browser runs as they are, no build step), found beside the running
 * code: in `console/` next to a bundle (tools/bundle.js copies them there), or in the source tree
 * above it (a checkout, bin/holdfast's dist/cli bundle, tsx). Read once, kept in memory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, hfError } from '../../../../firmware/errors';

export interface ConsoleFile {
  type: string;
  body: Buffer;
}

const FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/console.js': 'console.js',
  '/operators.js': 'operators.js',
  '/console.css': 'console.css',
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

/** The directory holding the console's files; HF_ERR_NOT_FOUND when none is found from `from` up. */
export function consoleDir(from: string = __dirname): string {
  const tried: string[] = [];
  let dir = from;
  for (let i = 0; i < 8; i++) {
    for (const c of [path.join(dir, 'console'), path.join(dir, 'targets', 'host', 'gateway', 'console')]) {
      tried.push(c);
      if (fs.existsSync(path.join(c, 'index.html'))) return c;
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw hfError(ErrorCode.NOT_FOUND, `the console's files (index.html, console.js, operators.js, console.css) are not in any of ${tried.slice(0, 4).join(', ')}, ...`);
}

/** Every console file by its URL path. */
export function loadConsole(dir: string = consoleDir()): Map<string, ConsoleFile> {
  const out = new Map<string, ConsoleFile>();
  for (const [url, name] of Object.entries(FILES)) out.set(url, { type: TYPES[path.extname(name)], body: fs.readFileSync(path.join(dir, name)) });
  return out;
}
