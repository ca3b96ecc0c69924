import { describe, expect, it } from "vitest";
import { DEFAULT_STALL_POLICY, LivenessTracker } from "../../src/registry/liveness-tracker.js";
import { FakeClock } from "../support/fake-clock.js";

/** A tracker on fake time that records each expiry with the time it fired. */
function track(): {
  clock: FakeClock;
  tracker: LivenessTracker<string>;
  fired: Array<{ key: string; deadline: number; at: number }>;
} {
  const clock = new FakeClock(0);
  const fired: Array<{ key: string; deadline: number; at: number }> = [];
  const tracker = new LivenessTracker<string>(clock, (key, deadline) => fired.push({ key, deadline, at: clock.monotonic() }));
  return { clock, tracker, fired };
}

describe("LivenessTracker", () => {
  it("does not expire a key at its deadline, only once the clock is past it", () => {
    const { clock, tracker, fired } = track();
    const deadline = clock.monotonic() + 60_000;
    tracker.expireAt("a", deadline);

    clock.advanceTo(deadline);
    expect(fired).toEqual([]);

    clock.advance(1);
    expect(fired).toEqual([{ key: "a", deadline, at: deadline + 1 }]);
    expect(tracker.size).toBe(0);
  });

  it("expires a key only once", () => {
    const { clock, tracker, fired } = track();
    tracker.expireAt("a", clock.monotonic() + 1000);
    clock.advance(10_000);
    clock.advance(10_000);
    expect(fired.map((f) => f.key)).toEqual(["a"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("postpones the expiry when a deadline is moved later", () => {
    const { clock, tracker, fired } = track();
    const start = clock.monotonic();
    tracker.expireAt("a", start + 60_000);
    clock.advance(30_000);
    tracker.expireAt("a", start + 90_000);

    clock.advanceTo(start + 90_000);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([{ key: "a", deadline: start + 90_000, at: start + 90_001 }]);
  });

  it("brings the expiry forward when a deadline is moved earlier", () => {
    const { clock, tracker, fired } = track();
    const start = clock.monotonic();
    tracker.expireAt("a", start + 60_000);
    tracker.expireAt("a", start + 10_000);
    clock.advance(10_001);
    expect(fired).toEqual([{ key: "a", deadline: start + 10_000, at: start + 10_001 }]);
  });

  it("never expires a forgotten key", () => {
    const { clock, tracker, fired } = track();
    tracker.expireAt("a", clock.monotonic() + 60_000);
    tracker.expireAt("b", clock.monotonic() + 70_000);
    tracker.forget("a");
    clock.advance(120_000);
    expect(fired.map((f) => f.key)).toEqual(["b"]);
    expect(tracker.size).toBe(0);
  });

  it("expires many keys in deadline order, each at its own deadline", () => {
    const { clock, tracker, fired } = track();
    const start = clock.monotonic();
    const offsets = [500, 100, 900, 300, 700, 200, 800, 400, 600, 1000];
    offsets.forEach((offset, i) => tracker.expireAt(`k${i}`, start + offset));

    clock.advance(2000);

    const expected = offsets
      .map((offset, i) => ({ key: `k${i}`, deadline: start + offset, at: start + offset + 1 }))
      .sort((a, b) => a.deadline - b.deadline);
    expect(fired).toEqual(expected);
  });

  it("expires at once a key whose deadline has already passed", () => {
    const { clock, tracker, fired } = track();
    tracker.expireAt("a", clock.monotonic() - 5000);
    clock.advance(0);
    expect(fired.map((f) => f.key)).toEqual(["a"]);
  });

  it("keeps a single timer however many keys it tracks", () => {
    const { clock, tracker } = track();
    for (let i = 0; i < 1000; i++) tracker.expireAt(`k${i}`, clock.monotonic() + 60_000 + i);
    expect(clock.pendingTimers).toBe(1);
  });

  it("expires a key whose deadline is set from inside an expiry", () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    const tracker: LivenessTracker<string> = new LivenessTracker<string>(clock, (key) => {
      fired.push(key);
      if (key === "a") tracker.expireAt("b", clock.monotonic() + 1000);
    });
    tracker.expireAt("a", clock.monotonic() + 1000);
    clock.advance(5000);
    expect(fired).toEqual(["a", "b"]);
  });

  it("cancels everything on close, leaving no timer behind", () => {
    const { clock, tracker, fired } = track();
    tracker.expireAt("a", clock.monotonic() + 1000);
    tracker.expireAt("b", clock.monotonic() + 2000);
    tracker.close();
    expect(clock.pendingTimers).toBe(0);

    tracker.expireAt("c", clock.monotonic() + 500);
    clock.advance(10_000);
    expect(fired).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe("after an event-loop stall", () => {
  it("lets beats that arrived during the stall count before judging deadlines", () => {
    const clock = new FakeClock(0);
    const expired: string[] = [];
    const tracker = new LivenessTracker<string>(clock, (key) => expired.push(key));
    tracker.expireAt("beating", clock.monotonic() + 1000);
    tracker.expireAt("silent", clock.monotonic() + 1000);
    clock.advance(900);
    // The loop blocks for 2 s; the "beating" agent's beat sits unread in a socket buffer meanwhile.
    clock.stall(2000);
    clock.advance(0); // the overdue timer fires, 1.9 s late
    expect(expired).toEqual([]);
    tracker.expireAt("beating", clock.monotonic() + 1000); // I/O runs: the buffered beat is read
    clock.advance(DEFAULT_STALL_POLICY.recheckMs);
    expect(expired).toEqual(["silent"]);
    tracker.close();
  });

  it("still expires silent keys when the loop keeps stalling", () => {
    const clock = new FakeClock(0);
    const expired: string[] = [];
    const tracker = new LivenessTracker<string>(clock, (key) => expired.push(key));
    tracker.expireAt("silent", clock.monotonic() + 1000);
    for (let stalls = 0; stalls <= DEFAULT_STALL_POLICY.maxRechecks + 1 && expired.length === 0; stalls++) {
      clock.stall(1000);
      clock.advance(0);
    }
    expect(expired).toEqual(["silent"]);
    tracker.close();
  });
});
