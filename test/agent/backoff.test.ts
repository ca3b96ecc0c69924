import { describe, expect, it } from "vitest";
import { Backoff } from "../../src/agent/backoff.js";

/** Delays drawn with `random` pinned to one value. */
function delays(random: number, count: number, options: { baseMs?: number; capMs?: number } = {}): number[] {
  const backoff = new Backoff({ ...options, random: () => random });
  return Array.from({ length: count }, () => backoff.next());
}

describe("Backoff (full jitter)", () => {
  it("doubles the window from 0.5 s up to the 30 s cap", () => {
    const backoff = new Backoff({ random: () => 0 });
    const windows = Array.from({ length: 9 }, () => {
      const window = backoff.windowMs();
      backoff.next();
      return window;
    });
    expect(windows).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it("draws each delay anywhere from 0 up to (not including) its window", () => {
    expect(delays(0, 4)).toEqual([0, 0, 0, 0]);
    expect(delays(0.5, 4)).toEqual([250, 500, 1000, 2000]);
    expect(delays(0.999999, 4)).toEqual([499, 999, 1999, 3999]);
  });

  it("never waits longer than the cap, however long the outage", () => {
    expect(Math.max(...delays(0.999999, 10_000))).toBe(29_999);
  });

  it("spreads a fleet that failed at the same instant over the whole window", () => {
    const fleet = Array.from({ length: 1000 }, () => new Backoff().next());
    const perTenth = new Array<number>(5).fill(0);
    for (const delay of fleet) perTenth[Math.floor(delay / 100)]! += 1;
    expect(Math.min(...fleet)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...fleet)).toBeLessThan(500);
    // 200 expected in each 100 ms slice; far from all of them in one.
    for (const count of perTenth) expect(count).toBeGreaterThan(120);
  });

  it("starts again from the first window after reset", () => {
    const backoff = new Backoff({ random: () => 0.5 });
    for (let i = 0; i < 6; i++) backoff.next();
    backoff.reset();
    expect([backoff.next(), backoff.next()]).toEqual([250, 500]);
  });

  it("honours a custom base and cap", () => {
    expect(delays(0.5, 5, { baseMs: 100, capMs: 300 })).toEqual([50, 100, 150, 150, 150]);
  });

  it("refuses a cap below the base", () => {
    expect(() => new Backoff({ baseMs: 1000, capMs: 10 })).toThrow(/0 < base <= cap/);
  });
});

describe("Backoff capped by the caller (the heartbeat interval the registry last told)", () => {
  it("never draws a window wider than the cap a call gives, however many attempts failed", () => {
    const backoff = new Backoff({ random: () => 0.999999 });

    const waits = Array.from({ length: 50 }, () => backoff.next(2000));

    expect(waits.slice(0, 3)).toEqual([499, 999, 1999]);
    expect(Math.max(...waits)).toBe(1999);
  });

  it("caps the first window too when the cap is below the base", () => {
    expect(new Backoff({ random: () => 0.5 }).next(200)).toBe(100);
  });

  it("widens to the doubled window at once when a later call gives a larger cap", () => {
    const backoff = new Backoff({ random: () => 0 });
    for (let attempt = 0; attempt < 5; attempt++) backoff.next(500);

    // Five failed attempts: 0.5 s doubled five times is 16 s.
    expect([backoff.windowMs(500), backoff.windowMs(20_000), backoff.windowMs(60_000)]).toEqual([500, 16_000, 16_000]);
  });

  it("never exceeds its own 30 s cap, whatever cap a call gives", () => {
    const backoff = new Backoff({ random: () => 0.999999 });
    for (let attempt = 0; attempt < 20; attempt++) backoff.next(120_000);

    expect(backoff.next(120_000)).toBe(29_999);
  });

  it("refuses a cap that is not positive", () => {
    expect(() => new Backoff().next(0)).toThrow(/must be positive/);
  });
});

describe("Backoff after a retry-after hint", () => {
  it("waits the hint plus a jitter uniform in [0, min(hint, window))", () => {
    // The first window is 0.5 s: the jitter stays below it, not below the 2 s hint.
    expect(new Backoff({ random: () => 0 }).retryAfter(2000)).toBe(2000);
    expect(new Backoff({ random: () => 0.5 }).retryAfter(2000)).toBe(2250);
    // A short hint bounds its own jitter.
    expect(new Backoff({ random: () => 0.5 }).retryAfter(100)).toBe(150);
  });

  it("spreads a fleet refused at the same instant over the hint's jitter, none earlier than the hint", () => {
    const fleet = Array.from({ length: 1000 }, () => new Backoff().retryAfter(1000, 400));

    expect(Math.min(...fleet)).toBeGreaterThanOrEqual(1000);
    expect(Math.max(...fleet)).toBeLessThan(1400);
    expect(Math.max(...fleet) - Math.min(...fleet)).toBeGreaterThan(300);
  });

  it("counts as an attempt: the window doubles as after next()", () => {
    const backoff = new Backoff({ random: () => 0 });
    backoff.retryAfter(1000);
    backoff.retryAfter(1000);

    expect(backoff.windowMs()).toBe(2000);
  });

  it("waits at most its own 30 s cap (plus jitter) for a hint larger than that", () => {
    expect(new Backoff({ random: () => 0 }).retryAfter(3_600_000)).toBe(30_000);
  });
});
