import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../src/server/token-bucket.js";
import { FakeClock } from "../support/fake-clock.js";

describe("a token bucket of 5 a second", () => {
  it("lets a burst of 5 through at once and says the 6th must wait 200 ms", () => {
    const bucket = new TokenBucket(new FakeClock(), 5);

    const waits = Array.from({ length: 6 }, () => bucket.take());

    expect(waits).toEqual([0, 0, 0, 0, 0, 200]);
  });

  it("refills one token every 200 ms, exactly", () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, 5);
    for (let i = 0; i < 5; i++) bucket.take();

    clock.advance(199);
    expect(bucket.take()).toBe(1);
    clock.advance(1);
    expect(bucket.take()).toBe(0);
    expect(bucket.take()).toBe(200);
  });

  it("never holds more than one second's worth, however long it was idle", () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(clock, 5);
    clock.advance(3_600_000);

    const granted = Array.from({ length: 10 }, () => bucket.take()).filter((wait) => wait === 0);

    expect(granted).toHaveLength(5);
  });

  it("refills nothing, and takes nothing extra, when the wall clock steps back", () => {
    let now = 1_000_000;
    const clock = { now: () => now, monotonic: () => now, setTimer: () => ({ cancel() {} }) };
    const bucket = new TokenBucket(clock, 5);
    for (let i = 0; i < 5; i++) bucket.take();

    now -= 60_000;
    expect(bucket.take()).toBe(200);
    now += 200;
    expect(bucket.take()).toBe(0);
  });
});
