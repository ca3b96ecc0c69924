// A Clock for tests: time stands still until `advance` moves it, firing due timers in deadline order with the
// clock set to each timer's own time. Wall and monotonic time move together, except that `stepWall` moves the
// wall clock alone, as NTP or a resumed VM does. Not a scheduler of promises: tests settle those themselves.

import type { Clock, Timer } from "../../src/common/clock.js";

export const FAKE_EPOCH = Date.parse("2026-01-01T00:00:00Z");

interface Scheduled {
  /** Monotonic time it is due at. */
  readonly at: number;
  /** Ties on `at` fire in the order they were scheduled, as real timers do. */
  readonly order: number;
  readonly fn: () => void;
}

export class FakeClock implements Clock {
  private mono = 0;
  /** Wall time minus monotonic time; moved by stepWall only. */
  private wallOffset: number;
  private readonly timers = new Set<Scheduled>();
  private scheduled = 0;

  constructor(start = FAKE_EPOCH) {
    this.wallOffset = start;
  }

  now(): number {
    return this.mono + this.wallOffset;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    // A negative or zero delay fires at the current instant, on the next advance (even advance(0)).
    const timer: Scheduled = { at: this.mono + Math.max(0, delayMs), order: this.scheduled++, fn };
    this.timers.add(timer);
    return { cancel: () => this.timers.delete(timer) };
  }

  /** Timers scheduled and neither fired nor cancelled. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer due by then (including ones scheduled while advancing)
   * in deadline order, with the clock at each timer's deadline while it runs.
   */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError(`cannot advance a clock backwards (${ms} ms)`);
    const until = this.mono + ms;
    for (let next = this.nextDue(until); next !== undefined; next = this.nextDue(until)) {
      this.timers.delete(next);
      // A timer overdue after a stall runs now, late, as a real one would.
      this.mono = Math.max(this.mono, next.at);
      next.fn();
    }
    this.mono = until;
  }

  /**
   * Advances to the earliest pending timer's deadline, firing it (and any due at the same instant), so a
   * test can measure a delay it does not know in advance. False, and time stands still, if no timer is pending.
   */
  advanceToNextTimer(): boolean {
    const next = this.nextDue(Number.POSITIVE_INFINITY);
    if (next === undefined) return false;
    this.advance(Math.max(0, next.at - this.mono));
    return true;
  }

  /**
   * A stalled event loop: time moves on by `ms` but no timer runs. The timers that fell due meanwhile
   * fire late, at the next advance.
   */
  stall(ms: number): void {
    if (ms < 0) throw new RangeError(`cannot stall a clock backwards (${ms} ms)`);
    this.mono += ms;
  }

  /** Steps the wall clock by `ms` (either way) without time passing: no timer fires, no deadline moves. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }

  /** Advances to an absolute wall time (which must not be in the past). */
  advanceTo(time: number): void {
    this.advance(time - this.now());
  }

  private nextDue(until: number): Scheduled | undefined {
    let earliest: Scheduled | undefined;
    for (const timer of this.timers) {
      if (timer.at > until) continue;
      if (earliest === undefined || timer.at < earliest.at || (timer.at === earliest.at && timer.order < earliest.order)) {
        earliest = timer;
      }
    }
    return earliest;
  }
}
