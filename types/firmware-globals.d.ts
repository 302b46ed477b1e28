/**
 * The runtime globals the core (firmware/) may use beyond ECMAScript itself: UTF-8 text coding,
 * as WHATWG Encoding defines it (Node >= 11, every browser, Moddable's XS). Only
 * tsconfig.firmware.json includes this file; the rest of the project gets the same names from
 * @types/node. Anything else Node-only (Buffer, process, timers, node:*) does not compile there.
 */
declare class TextEncoder {
  encode(input?: string): Uint8Array;
  encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
}

declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
