// Reconnect delays: exponential backoff with full jitter. The n-th delay is uniform in [0, min(cap, base * 2^n)),
// so a fleet that lost its server at the same instant comes back spread over the whole window rather than in
// one second. Only computes delays; the caller owns the timers.

export interface BackoffOptions {
  /** The first window, in ms (default 500). */
  readonly baseMs?: number;
  /** The largest window, in ms (default 30 000). */
  readonly capMs?: number;
  /** Uniform in [0, 1); injected so tests can pin it. */
  readonly random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 500;
export const DEFAULT_BACKOFF_CAP_MS = 30_000;

export class Backoff {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.capMs = options.capMs ?? DEFAULT_BACKOFF_CAP_MS;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0 && this.capMs >= this.baseMs)) {
      throw new RangeError(`backoff needs 0 < base <= cap, got base ${this.baseMs} ms and cap ${this.capMs} ms`);
    }
  }

  /** The window the next delay is drawn from. */
  get windowMs(): number {
    return Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
  }

  /** The delay before the next attempt, in whole ms; each call doubles the window until it reaches the cap. */
  next(): number {
    const window = this.windowMs;
    // Stop counting at the cap, so 2 ** attempt never overflows however long the outage.
    if (window < this.capMs) this.attempt++;
    return Math.floor(this.random() * window);
  }

  /** Back to the first window, after a healthy period. */
  reset(): void {
    this.attempt = 0;
  }
}
