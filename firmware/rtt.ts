/**
 * Retransmission timeout from measured round trips, after RFC 6298: SRTT and RTTVAR smoothed with
 * alpha 1/8 and beta 1/4, RTO = SRTT + max(G, 4 * RTTVAR), clamped to [min, max]; doubled on every
 * timeout (back-off) until the next valid sample. Samples come only from messages sent once (Karn).
 */
import { checkMs } from './check';

export interface RttOptions {
  /** RTO before the first sample, ms (default 1000, as RFC 6298 2.1). */
  initialRto?: number;
  /** Lower bound, ms (default 200). */
  minRto?: number;
  /** Upper bound, ms (default 30000). */
  maxRto?: number;
  /** Clock granularity G, ms (default 1). */
  granularity?: number;
}

export const RTT_DEFAULTS: Required<RttOptions> = { initialRto: 1000, minRto: 200, maxRto: 30000, granularity: 1 };

export class RttEstimator {
  readonly minRto: number;
  readonly maxRto: number;
  readonly granularity: number;
  srtt = 0;
  rttvar = 0;
  /** Current timeout, ms, including back-off. */
  rto: number;
  /** Samples taken. */
  samples = 0;
  /** Time-outs since the last sample. */
  backoffs = 0;
  /** The timeout before any sample (initialRto, clamped). */
  private readonly initial: number;

  constructor(opts: RttOptions = {}) {
    this.minRto = checkMs('minRto', opts.minRto ?? RTT_DEFAULTS.minRto, 0);
    this.maxRto = checkMs('maxRto', opts.maxRto ?? RTT_DEFAULTS.maxRto, this.minRto);
    this.granularity = checkMs('granularity', opts.granularity ?? RTT_DEFAULTS.granularity, 0);
    this.initial = this.clamp(checkMs('initialRto', opts.initialRto ?? RTT_DEFAULTS.initialRto, 0));
    this.rto = this.initial;
  }

  private clamp(v: number): number {
    return v < this.minRto ? this.minRto : Math.min(v, this.maxRto);
  }

  /** Adds one round-trip measurement in ms. */
  sample(r: number): void {
    if (!(r >= 0)) return;
    if (this.samples === 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      const d = this.srtt - r;
      this.rttvar = 0.75 * this.rttvar + 0.25 * (d < 0 ? -d : d);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.samples++;
    this.backoffs = 0;
    this.rto = this.estimate();
  }

  /** The timeout the samples give, without back-off (RFC 6298 2.3). */
  private estimate(): number {
    return this.clamp(this.srtt + Math.max(this.granularity, 4 * this.rttvar));
  }

  /** A retransmission timer expired: double the timeout (RFC 6298 5.5). */
  backoff(): void {
    this.backoffs++;
    this.rto = this.clamp(this.rto * 2);
  }

  /**
   * Forgets the back-offs since the last sample (the path changed: another gateway): the timeout is
   * the estimate's again, or the initial one without a sample.
   */
  unback(): void {
    if (this.backoffs === 0) return;
    this.backoffs = 0;
    this.rto = this.samples === 0 ? this.initial : this.estimate();
  }

  /** State for snapshots. */
  toData(): [number, number, number, number, number] {
    return [this.srtt, this.rttvar, this.rto, this.samples, this.backoffs];
  }

  fromData(d: readonly number[]): void {
    [this.srtt, this.rttvar, this.rto, this.samples, this.backoffs] = d;
  }
}
