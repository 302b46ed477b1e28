/**
 * What the fuzzer feeds: each target makes a valid input from a Prng (generators.ts), and runs an
 * input through its decoder or the gateway. `run` returns the error code of a refusal, or null when
 * the input was taken; it throws only what the runner counts as a failure (an error without a code).
 */
import { decodeValue } from '../../firmware/cbor-value';
import { decodeControl } from '../../firmware/control';
import { isHfError } from '../../firmware/errors';
import { decodeFrame } from '../../firmware/mux-frame';
import { BundleReader, peekRn, peekSid } from '../../firmware/wire';
import type { Prng } from '../../targets/sim/prng';
import { nodeCrypto } from '../../targets/node/crypto';
import { FrameReader } from '../../targets/host/net/frames';
import { Refusal } from '../../targets/host/gateway/front';
import type { GatewayHarness } from './gateway-harness';
import { type BundleSpec, advance, genBundle, genHello, genControl, genMuxFrame, genSessionBundle, genTcpStream, genValue, seal, type FuzzSession } from './generators';
import { mutate } from './mutators';

/** One input: its bytes, and whether they are a generated input left as it was (which must be taken). */
export interface Input {
  bytes: Uint8Array;
  valid: boolean;
  /** Run after the input was taken (the gateway's session bundles move their session on). */
  taken?: () => void;
  /** Direct connection the gateway gets it on (0: an HTTP request). */
  conn?: number;
}

export interface Target {
  readonly name: string;
  /** A valid input or a mutation of one (`mutateRate`: the share that is mutated). */
  make(p: Prng, mutateRate: number): Input;
  /** Runs `input`; returns the code it was refused with, or null when taken. */
  run(input: Input): string | null;
}

/** Calls `f`; an HfError becomes its code, anything else is rethrown (a failure). */
function coded(f: () => void): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (isHfError(e) && typeof e.code === 'string' && e.code.startsWith('HF_ERR_')) return e.code;
    throw e;
  }
}

function decoderTarget(name: string, gen: (p: Prng) => Uint8Array, decode: (b: Uint8Array, p: Input) => void): Target {
  return {
    name,
    make(p, mutateRate) {
      const b = gen(p);
      if (!p.chance(mutateRate)) return { bytes: b, valid: true };
      return { bytes: mutate(p, b, gen(p)), valid: false };
    },
    run: (input) => coded(() => decode(input.bytes, input)),
  };
}

const reader = new BundleReader();

/** The bundle reader, the header walks, and each control item of a bundle that reads. */
function decodeBundle(b: Uint8Array): void {
  peekSid(b);
  peekRn(b);
  const v = reader.read(b);
  for (let k = 0; k < v.ctlCount; k++) decodeControl(v.buf, v.ctlStarts[k], v.ctlEnds[k]);
}

/** Chunk boundaries for a TCP stream: taken from the input's own bytes, so a replay splits it the same way. */
function feedFrames(b: Uint8Array): void {
  const fr = new FrameReader(262144);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  let at = 0;
  let step = 1;
  while (at < buf.length) {
    const n = Math.min(buf.length - at, 1 + ((buf[at] * 7 + step++) % 97));
    fr.push(buf.subarray(at, at + n), (body) => decodeBundle(body));
    at += n;
  }
}

export const DECODER_TARGETS: readonly Target[] = [
  decoderTarget('cbor-value', genValue, (b) => decodeValue(b)),
  decoderTarget('control', genControl, (b) => decodeControl(b, 0, b.length)),
  decoderTarget('bundle', genBundle, decodeBundle),
  decoderTarget('mux-frame', genMuxFrame, (b) => decodeFrame(b)),
  decoderTarget('tcp-frames', genTcpStream, feedFrames),
];

/**
 * The gateway through its front entry: valid hellos, keyed session bundles with correct tags
 * (mutated, and often signed again after the mutation so the tag passes and the session's own reader
 * sees the damage), and bundles of any shape from strangers.
 */
export function gatewayTarget(h: GatewayHarness): Target {
  return {
    name: 'gateway',
    make(p, mutateRate) {
      const d = h.devices[p.int(h.devices.length)];
      const conn = p.chance(0.3) ? 1 + p.int(4) : 0;
      const kind = p.int(10);
      if (kind === 0) {
        // A hello of a known device with the next counter and a correct proof, mutated: refused, or
        // taken when the mutation missed what matters (then it replaces the device's session).
        const { body } = genHello(p, nodeCrypto, d, p.u32(), p.u32());
        return { bytes: mutate(p, body, genBundle(p)), valid: false, conn };
      }
      if (kind <= 7) {
        const s = h.session(p, d);
        const { body, spec } = genSessionBundle(p, s);
        if (!p.chance(mutateRate)) return { bytes: body, valid: false, conn, taken: () => advance(s, spec) };
        const m = mutate(p, body, p.chance(0.5) ? genSessionBundle(p, s).body : genBundle(p));
        const resealed = p.chance(0.6) && seal(s.sealer, m);
        return { bytes: m, valid: false, conn, taken: resealed ? () => resync(s, spec) : undefined };
      }
      const b = genBundle(p);
      return { bytes: p.chance(mutateRate) ? mutate(p, b, genBundle(p)) : b, valid: false, conn };
    },
    run(input) {
      const r = h.feed(input.bytes, input.conn ?? 0);
      if (r instanceof Refusal) return r.error.code;
      input.taken?.();
      return null;
    },
  };
}

/** A resealed mutant was taken: what it changed is unknown, so the request number moves on and the rest stays. */
function resync(s: FuzzSession, spec: BundleSpec): void {
  s.rn = spec.rn;
}
