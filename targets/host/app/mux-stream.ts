/**
 * One stream of a Mux (docs/MUX.md): a Node `Duplex` (allowHalfOpen) that can be piped to a socket.
 * All protocol work is the Mux's; this class only hands it the stream's writes, its end, its reads
 * and its destruction.
 *
 *   'connect'              (streams this side opened) the peer accepted the stream
 *   'error' (HfError)      the peer refused it (OPEN_FAIL) or reset it (RESET): `err.code` says why
 *   end()                  half-close: END after every byte written; reading goes on
 *   destroy(err?)          RESET with err.code (HfError) or HF_ERR_CLOSED; an incoming stream not yet
 *                          accepted is refused instead
 *   reset(code, message)   destroy(hfError(code, message)): the peer's stream errors with that code
 *   accept() / refuse()    (incoming streams, once) answer the peer's OPEN
 */
import { Duplex } from 'node:stream';
import { ErrorCode, type ErrorCodeValue, hfError } from '../../../firmware/errors';

/** What a stream asks of the Mux that owns it. */
export interface MuxDriver {
  streamWrite(s: MuxStream): void;
  streamFinal(s: MuxStream): void;
  streamRead(s: MuxStream): void;
  streamDestroy(s: MuxStream, err: Error | null): void;
  streamAccept(s: MuxStream): void;
  streamRefuse(s: MuxStream, code: ErrorCodeValue, message: string): void;
}

export type WriteCallback = (err?: Error | null) => void;

export class MuxStream extends Duplex {
  /** Stream id (odd: opened by the device, even: by the gateway; 0 if it never got one). */
  readonly id: number;
  /** The target as the OPEN carried it, "host:port". */
  readonly target: string;
  readonly host: string;
  readonly port: number;
  /** True if the peer opened this stream (then accept() or refuse() it). */
  readonly incoming: boolean;
  /** DATA bytes received from the peer / sent to it. */
  bytesRead = 0;
  bytesWritten = 0;
  /** The write being sent (the Mux's): its bytes, how far they went, its callback. */
  pendingWrite: { chunk: Buffer; off: number; cb: WriteCallback } | null = null;
  /** The end waiting to be sent as END (the Mux's). */
  pendingFinal: WriteCallback | null = null;
  private readonly driver: MuxDriver;

  constructor(driver: MuxDriver, id: number, host: string, port: number, target: string, incoming: boolean, readableHighWaterMark: number) {
    super({ allowHalfOpen: true, readableHighWaterMark });
    this.driver = driver;
    this.id = id;
    this.host = host;
    this.port = port;
    this.target = target;
    this.incoming = incoming;
  }

  /** Accepts an incoming stream (OPEN_OK). A stream destroyed meanwhile is left alone. */
  accept(): void {
    this.driver.streamAccept(this);
  }

  /** Refuses an incoming stream (OPEN_FAIL with `code`) and destroys it here, without an error. */
  refuse(code: ErrorCodeValue = ErrorCode.FORBIDDEN, message = `${this.target} refused`): void {
    this.driver.streamRefuse(this, code, message);
  }

  /** Aborts the stream both ways; the peer's side errors with `code`. This side errors too (destroy(err)). */
  reset(code: ErrorCodeValue = ErrorCode.CLOSED, message = `stream ${this.id} (${this.target}) reset`): void {
    this.destroy(hfError(code, message));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: WriteCallback): void {
    if (chunk.length === 0) {
      cb();
      return;
    }
    this.pendingWrite = { chunk, off: 0, cb };
    this.driver.streamWrite(this);
  }

  override _final(cb: WriteCallback): void {
    this.pendingFinal = cb;
    this.driver.streamFinal(this);
  }

  override _read(): void {
    this.driver.streamRead(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.driver.streamDestroy(this, err);
    cb(err);
  }
}
