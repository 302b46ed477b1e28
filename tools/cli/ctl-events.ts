/**
 * `holdfast ctl`'s reader of the management API's event stream (`GET /api/events`, Server-Sent
 * Events) with the API token as `Authorization: Bearer`, as ctl-http.ts sends it. `EventStream.open`
 * resolves once the gateway's `hello` arrived; then `onEvent` gets each event's name and parsed data,
 * never from inside `open`, and `onEnd` is called once when the stream ends for any reason other than
 * `close()`.
 *
 * Errors (HfError): a status other than 200: HF_ERR_HTTP naming it (a refusal's code when the body has
 * one); no hello within `helloTimeoutMs`: HF_ERR_TIMEOUT; no connection: HF_ERR_CONNECT; one event
 * over `maxEventBytes` or data that is not JSON: HF_ERR_HTTP; the gateway ended the stream (a restart,
 * a reader too slow for its bounds): HF_ERR_CLOSED.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { ErrorCode, type HfError, hfError, isHfError } from '../../firmware/errors';

export interface EventStreamOptions {
  /** The console's base URL (as ConsoleClientOptions.url). */
  url: URL;
  /** The API token (`hft_...`). */
  token: string | null;
  /** Longest wait for the stream's hello, ms (default 3000; the job is made only after it, so kept short: then ctl polls instead). */
  helloTimeoutMs?: number;
  /** Largest single event read, bytes (default 67108864). */
  maxEventBytes?: number;
}

export const EVENT_STREAM_DEFAULTS = { helloTimeoutMs: 3000, maxEventBytes: 67_108_864 } as const;

export type EventHandler = (name: string, data: unknown) => void;

export class EventStream {
  private readonly req: http.ClientRequest;
  private closed = false;

  private constructor(req: http.ClientRequest) {
    this.req = req;
  }

  /** Opens the stream; resolves at its hello (see the file comment for the errors). */
  static open(o: EventStreamOptions, onEvent: EventHandler, onEnd: (err: HfError) => void): Promise<EventStream> {
    const helloTimeoutMs = o.helloTimeoutMs ?? EVENT_STREAM_DEFAULTS.helloTimeoutMs;
    const maxEventBytes = o.maxEventBytes ?? EVENT_STREAM_DEFAULTS.maxEventBytes;
    const u = new URL('api/events', o.url);
    const lib = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { accept: 'text/event-stream', ...(o.token === null ? {} : { authorization: `Bearer ${o.token}` }) };
    return new Promise((resolve, reject) => {
      let hello = false;
      let stream: EventStream | null = null;
      const fail = (err: HfError): void => {
        clearTimeout(timer);
        if (!hello) {
          hello = true;
          reject(err);
          req.destroy();
          return;
        }
        if (stream !== null && !stream.closed) {
          stream.closed = true;
          req.destroy();
          onEnd(err);
        }
      };
      const req = lib.get(u, { headers }, (res) => {
        if (res.statusCode !== 200) {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (text.length < 4096) text += d;
          });
          res.on('end', () => {
            let code: string | undefined;
            try {
              code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
            } catch {
              // no holdfast error body
            }
            fail(hfError(ErrorCode.HTTP, `GET ${u.href}: HTTP ${res.statusCode}${code === undefined ? '' : ` ${code}`}`));
          });
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (d: string) => {
          buf += d;
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev = parseBlock(block);
            if (ev === null) continue;
            if (ev instanceof Error) return fail(ev);
            if (!hello) {
              if (ev.name !== 'hello') continue;
              hello = true;
              clearTimeout(timer);
              stream = new EventStream(req);
              resolve(stream);
              continue;
            }
            if (stream?.closed) return;
            onEvent(ev.name, ev.data);
          }
          if (buf.length > maxEventBytes) fail(hfError(ErrorCode.HTTP, `GET ${u.href}: an event of more than ${maxEventBytes} bytes`));
        });
        res.on('error', (e) => fail(hfError(ErrorCode.CLOSED, `the event stream of ${o.url.href} ended: ${e.message}`, e)));
        res.on('end', () => fail(hfError(ErrorCode.CLOSED, `the event stream of ${o.url.href} ended`)));
      });
      req.on('error', (e) => fail(isHfError(e) ? e : hfError(ErrorCode.CONNECT, `cannot reach the console's event stream at ${u.href}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, e)));
      const timer = setTimeout(() => fail(hfError(ErrorCode.TIMEOUT, `GET ${u.href}: no hello within ${helloTimeoutMs} ms`)), helloTimeoutMs);
    });
  }

  /** Stops reading (onEnd is not called); calling it again does nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.req.destroy();
  }
}

/** One event block: its name and JSON data; null for a comment or a block without data; an HfError for data that is not JSON. */
function parseBlock(block: string): { name: string; data: unknown } | HfError | null {
  let name = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
  }
  if (data.length === 0) return null;
  try {
    return { name, data: JSON.parse(data.join('\n')) };
  } catch {
    return hfError(ErrorCode.HTTP, `event ${JSON.stringify(name)}: data that is not JSON`);
  }
}
