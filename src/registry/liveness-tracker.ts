// Fires `onExpire(key)` once a key's deadline has passed, using one timer armed for the earliest deadline
// (never a scan of every agent). It does not decide deadlines or statuses: the registry does.

import type { Clock, Timer } from "./clock.js";
import { DeadlineHeap } from "./deadline-heap.js";

export class LivenessTracker<K> {
  private readonly deadlines = new DeadlineHeap<K>();
  private timer: Timer | undefined;
  private armedFor = Infinity;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly onExpire: (key: K, deadline: number) => void,
  ) {}

  get size(): number {
    return this.deadlines.size;
  }

  /** Expires `key` once the clock is past `deadline`. Replaces any earlier deadline of the key. */
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
    this.timer = this.clock.setTimer(next.deadline - this.clock.now() + 1, () => this.fire());
  }

  private fire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    for (let next = this.deadlines.peek(); next !== undefined && next.deadline < now; next = this.deadlines.peek()) {
      this.deadlines.delete(next.key);
      this.onExpire(next.key, next.deadline);
    }
    this.arm();
  }
}
