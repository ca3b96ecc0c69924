// Fires `onExpire(key)` once a key's deadline has passed, using one timer armed for the earliest deadline
// (never a scan of every agent). Deadlines are readings of the monotonic clock, so a step of the wall
// clock moves none of them. It does not decide deadlines or statuses: the liveness authority does.
//
// A timer that fires late means the event loop was stalled (a long GC, a blocked loop, a suspended VM).
// Beats that arrived meanwhile are still unread in socket buffers, and timers run before I/O in Node's
// loop: expiring now would turn nodes OFFLINE whose beats came in time. So a late timer first lets I/O run
// (a short re-check), and only then judges deadlines against the beats that were read.

import type { Clock, Timer } from "../common/clock.js";
import { DeadlineHeap } from "./deadline-heap.js";

export interface StallPolicy {
  /** A timer this late (ms) means the loop was stalled. */
  readonly thresholdMs: number;
  /** How long to let I/O run before judging deadlines after a stall. */
  readonly recheckMs: number;
  /** Re-checks in a row before deadlines are judged anyway (a loop that keeps stalling). */
  readonly maxRechecks: number;
}

export const DEFAULT_STALL_POLICY: StallPolicy = { thresholdMs: 250, recheckMs: 50, maxRechecks: 5 };

export class LivenessTracker<K> {
  private readonly deadlines = new DeadlineHeap<K>();
  private timer: Timer | undefined;
  /** The deadline the timer is armed for. */
  private armedFor = Infinity;
  /** When the armed timer should fire, to measure how late it did. */
  private dueAt = Infinity;
  private rechecks = 0;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly onExpire: (key: K, deadline: number) => void,
    private readonly stall: StallPolicy = DEFAULT_STALL_POLICY,
  ) {}

  get size(): number {
    return this.deadlines.size;
  }

  /** Expires `key` once the monotonic clock is past `deadline`. Replaces any earlier deadline of the key. */
  expireAt(key: K, deadline: number): void {
    this.deadlines.set(key, deadline);
    // A later deadline needs no new timer: the armed one fires early and re-arms. Only an earlier one does.
    if (deadline < this.armedFor) this.arm();
  }

  forget(key: K): void {
    this.deadlines.delete(key);
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private arm(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedFor = Infinity;
    const next = this.deadlines.peek();
    if (next === undefined || this.closed) return;
    this.armedFor = next.deadline;
    // "Past the deadline" is strict (now - last_heartbeat > timeout), hence the extra millisecond.
    this.schedule(next.deadline - this.clock.monotonic() + 1);
  }

  private schedule(delayMs: number): void {
    this.dueAt = this.clock.monotonic() + Math.max(0, delayMs);
    this.timer = this.clock.setTimer(delayMs, () => this.fire());
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.monotonic();
    if (now - this.dueAt > this.stall.thresholdMs && this.rechecks < this.stall.maxRechecks) {
      this.rechecks++;
      this.schedule(this.stall.recheckMs);
      return;
    }
    this.rechecks = 0;
    for (let next = this.deadlines.peek(); next !== undefined && next.deadline < now; next = this.deadlines.peek()) {
      this.deadlines.delete(next.key);
      this.onExpire(next.key, next.deadline);
    }
    this.arm();
  }
}
