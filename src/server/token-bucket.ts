// A token bucket on an injected Clock's monotonic time: `ratePerSecond` tokens a second, holding at most `capacity`, so a
// burst of up to `capacity` passes at once and a steady stream passes at the rate. Knows nothing of RPCs.

import type { Clock } from "../common/clock.js";

export class TokenBucket {
  // Counted in thousandths of a token, so that whole milliseconds at a whole rate refill exactly (no
  // floating-point dust turning "retry in 1 ms" into 2).
  private milliTokens: number;
  private refilledAt: number;

  constructor(
    private readonly clock: Clock,
    private readonly ratePerSecond: number,
    private readonly capacity: number = ratePerSecond,
  ) {
    this.milliTokens = capacity * 1000;
    this.refilledAt = clock.monotonic();
  }

  /** Takes one token: 0 when granted, else the milliseconds until one will be there (nothing is taken). */
  take(): number {
    const now = this.clock.monotonic();
    const elapsedMs = Math.max(0, now - this.refilledAt);
    this.milliTokens = Math.min(this.capacity * 1000, this.milliTokens + elapsedMs * this.ratePerSecond);
    this.refilledAt = now;
    if (this.milliTokens >= 1000) {
      this.milliTokens -= 1000;
      return 0;
    }
    return Math.ceil((1000 - this.milliTokens) / this.ratePerSecond);
  }
}
