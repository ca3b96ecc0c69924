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
      const window = backoff.windowMs;
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
