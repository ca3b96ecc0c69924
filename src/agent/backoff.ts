// Reconnect delays: exponential backoff with full jitter. The n-th delay is uniform in [0, min(cap, base * 2^n)),
// so a fleet that lost its server at the same instant comes back spread over the whole window rather than in
// one second. The caller may cap a window lower (the daemon caps it by the heartbeat interval the registry last
// told it, so it is never away longer than one interval once the registry is back), and a server's retry-after
// hint replaces the window. Only computes delays; the caller owns the timers.

export interface BackoffOptions {
  /** The first window, in ms (default 500). */
  readonly baseMs?: number;
  /** The largest window, in ms (default 30 000), whatever cap a call gives. Also bounds a retry-after hint. */
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

  /** The window the next delay is drawn from, no wider than `capMs` (when given) nor the configured cap. */
  windowMs(capMs?: number): number {
    if (capMs !== undefined && !(capMs > 0)) throw new RangeError(`a backoff cap must be positive, got ${capMs} ms`);
    // A cap below the base caps the first window too.
    return Math.min(this.capMs, capMs ?? this.capMs, this.baseMs * 2 ** this.attempt);
  }

  /**
   * The delay before the next attempt, in whole ms, drawn from `windowMs(capMs)`; each call doubles the window
   * until it reaches the configured cap.
   */
  next(capMs?: number): number {
    const window = this.windowMs(capMs);
    this.advance();
    return Math.floor(this.random() * window);
  }

  /**
   * The delay before the next attempt when the server said when to retry: the hint (at most the configured
   * cap) plus a jitter uniform in [0, min(hint, window)), so a fleet refused at the same instant does not
   * come back at one instant either. Counts as an attempt, as next() does.
   */
  retryAfter(hintMs: number, capMs?: number): number {
    const hint = Math.min(Math.max(0, hintMs), this.capMs);
    const window = this.windowMs(capMs);
    this.advance();
    return Math.floor(hint + this.random() * Math.min(hint, window));
  }

  /** Back to the first window, after a healthy period. */
  reset(): void {
    this.attempt = 0;
  }

  private advance(): void {
    // Counts up to the configured cap whatever cap the call gave, so a later, larger cap widens the window
    // at once; stops there, so 2 ** attempt never overflows however long the outage.
    if (this.baseMs * 2 ** this.attempt < this.capMs) this.attempt++;
  }
}
