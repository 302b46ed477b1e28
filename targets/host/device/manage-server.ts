/**
 * The device's end of the management channel (docs/PROTOCOL.md 14.6): accepts the gateway's streams
 * to MANAGE_TARGET on the session's mux and answers each command item through the Executor (at most
 * once per id, journaled), writing an `accepted` notice when the command starts and its answer when
 * it ends, each as a length-prefixed item on the stream the command came on.
 *
 * The gateway opens a new stream after losing one (the device's mux began again, a reset) and sends
 * again what it has no answer to, under the same ids: those are answered from the journal or joined to
 * the run still going, never run twice. An answer whose stream is gone stays in the journal for that
 * re-send. At most `maxRunning` commands run at once per stream: past that the stream is paused, so
 * its credit (and the gateway's sending) stops until one ends. A bad item (length 0 or over
 * `maxItemBytes`, a command that does not decode) resets that stream with its code (HF_ERR_LIMIT,
 * HF_ERR_COMMAND); the gateway opens another.
 */
import { ErrorCode, isHfError } from '../../../firmware/errors';
import { decodeCommand, encodeReply, type Reply } from '../../../firmware/manage/command';
import type { Executor } from '../../../firmware/manage/executor';
import { DEFAULT_MAX_ITEM_BYTES, ItemReader, itemHeader, MANAGE_TARGET } from '../../../firmware/manage/items';
import type { Log } from '../../../hal/log';
import type { Mux, MuxStream } from '../app/mux';

export interface ManageServerOptions {
  log: Log;
  /** Largest command item taken from the gateway, bytes (default 16842752: a 16 MiB update and its envelope). */
  maxItemBytes?: number;
  /** Commands of one stream running at once before the stream is paused (default 16). */
  maxRunning?: number;
  /** Told each id as it starts running (after the journal has it). */
  onStarted?: (id: string, op: string) => void;
}

export const MANAGE_SERVER_DEFAULTS = { maxItemBytes: DEFAULT_MAX_ITEM_BYTES, maxRunning: 16 };

export interface ManageServer {
  /** Management streams open now. */
  readonly streams: number;
  /** Stops taking streams and resets the open ones (what runs goes on; its answer is journaled). */
  close(): void;
}

/** Serves management on `mux` (call once per session, right after the mux is made). */
export function serveManagement(mux: Mux, executor: Executor, opts: ManageServerOptions): ManageServer {
  const maxItemBytes = opts.maxItemBytes ?? MANAGE_SERVER_DEFAULTS.maxItemBytes;
  const maxRunning = opts.maxRunning ?? MANAGE_SERVER_DEFAULTS.maxRunning;
  if (!Number.isInteger(maxRunning) || maxRunning < 1) throw new RangeError(`maxRunning must be an integer >= 1, got ${String(maxRunning)}`);
  const open = new Set<MuxStream>();
  let closed = false;
  const onStream = (s: MuxStream, target: string): void => {
    if (target !== MANAGE_TARGET) {
      // Someone else may serve other targets; when nobody does, refuse as a mux with no listener would.
      if (mux.listenerCount('stream') === 1) s.refuse(ErrorCode.FORBIDDEN, `${target}: nobody accepts streams here`);
      return;
    }
    if (closed) return s.refuse(ErrorCode.CLOSED, `${target}: management is closing`);
    s.accept();
    open.add(s);
    serveStream(s);
  };
  const serveStream = (s: MuxStream): void => {
    const reader = new ItemReader(maxItemBytes);
    let running = 0;
    const send = (r: Reply): void => {
      if (s.destroyed) return; // the journal keeps the answer for the re-send
      const b = encodeReply(r);
      s.write(itemHeader(b.length));
      s.write(b);
    };
    s.on('error', (e: Error) => opts.log.debug('management stream ended', { code: isHfError(e) ? e.code : 'error' }));
    s.on('close', () => open.delete(s));
    s.on('end', () => s.end());
    s.on('data', (chunk: Buffer) => {
      let items: Uint8Array[];
      try {
        items = reader.push(chunk);
      } catch (e) {
        opts.log.warn('management stream reset: bad item', { code: isHfError(e) ? e.code : 'error' });
        s.reset(isHfError(e) ? e.code : ErrorCode.LIMIT, e instanceof Error ? e.message : String(e));
        return;
      }
      for (const item of items) {
        let cmd: ReturnType<typeof decodeCommand>;
        try {
          cmd = decodeCommand(item);
        } catch (e) {
          opts.log.warn('management stream reset: bad command', { code: isHfError(e) ? e.code : 'error' });
          s.reset(isHfError(e) ? e.code : ErrorCode.COMMAND, e instanceof Error ? e.message : String(e));
          return;
        }
        running++;
        if (running >= maxRunning) s.pause();
        executor
          .execute(cmd, (id) => {
            opts.onStarted?.(id, cmd.op);
            send({ id, accepted: true });
          })
          .then(
            (answer) => send(answer),
            // Only the journal's medium failing gets here (HF_ERR_STORAGE): no answer can be promised.
            (e: unknown) => {
              opts.log.error('management journal failed', { code: isHfError(e) ? e.code : 'error', id: cmd.id });
              if (!s.destroyed) s.reset(ErrorCode.STORAGE, 'the device cannot journal commands');
            },
          )
          .finally(() => {
            running--;
            if (running < maxRunning && s.isPaused() && !s.destroyed) s.resume();
          });
      }
    });
  };
  mux.on('stream', onStream);
  return {
    get streams() {
      return open.size;
    },
    close() {
      if (closed) return;
      closed = true;
      mux.off('stream', onStream);
      for (const s of [...open]) s.reset(ErrorCode.CLOSED, 'management is closing');
      open.clear();
    },
  };
}
