/**
 * Which of the gateways a device knows it talks to now (a primary/standby pair, or more), as a small
 * state machine: it stays with one while requests get answers and moves to the next
 *  - at once on an answer that says the gateway is a standby (HF_ERR_STANDBY) or is fenced (an epoch
 *    lower than one this device has seen: HF_ERR_EPOCH, the primary was superseded while cut off);
 *  - after `failuresToMove` failures in a row without an answer (refused, reset, timed out).
 * Epochs only rise: the highest seen is what later answers are judged by. With one gateway it never
 * moves.
 */
import { ErrorCode, hfError } from '../../../firmware/errors';

export interface GatewayChoiceOptions {
  /** Failures in a row (no answer) after which the device tries the next gateway (default 2). */
  failuresToMove?: number;
}

export const Verdict = { TAKE: 0, FENCED: 1 } as const;
export type VerdictValue = (typeof Verdict)[keyof typeof Verdict];

export class GatewayChoice {
  /** Index of the gateway in use. */
  at = 0;
  /** The highest epoch any gateway's answer carried (0: none seen). */
  epoch = 0;
  /** Moves made. */
  moves = 0;
  private failures = 0;
  private readonly failuresToMove: number;

  constructor(
    /** Gateways known (the configured ones, then those learned from welcomes). */
    public count: number,
    o: GatewayChoiceOptions = {},
  ) {
    const f = o.failuresToMove ?? 2;
    if (!Number.isInteger(f) || f < 1 || f > 1000) throw hfError(ErrorCode.OPTION, `failover.failuresToMove must be an integer 1..1000, got ${String(f)}`);
    this.failuresToMove = f;
  }

  /**
   * An answer from the gateway in use, carrying `epoch` (0: the gateway is not in a pair). FENCED:
   * refuse it (an older epoch than seen) and move on; TAKE: give it to the link.
   */
  answered(epoch: number): VerdictValue {
    if (epoch > 0 && epoch < this.epoch) return Verdict.FENCED;
    if (epoch > this.epoch) this.epoch = epoch;
    this.failures = 0;
    return Verdict.TAKE;
  }

  /** A request failed with `code`: true when the device should move to the next gateway now. */
  failed(code: string): boolean {
    if (this.count < 2) return false;
    if (code === ErrorCode.STANDBY || code === ErrorCode.EPOCH) return true;
    return ++this.failures >= this.failuresToMove;
  }

  /** One more gateway is known (learned from a welcome): it comes last in the turn. */
  grow(): void {
    this.count++;
  }

  /** Moves to the next gateway (or to gateway `to`); returns its index. */
  move(to = -1): number {
    this.at = to >= 0 && to < this.count ? to : (this.at + 1) % this.count;
    this.failures = 0;
    this.moves++;
    return this.at;
  }
}
