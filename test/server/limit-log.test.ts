import { describe, expect, it } from "vitest";
import { silentLog } from "../../src/common/log.js";
import { type LimitName, LimitLog } from "../../src/server/limit-log.js";
import { FakeClock } from "../support/fake-clock.js";

function recorder(): { lines: Array<{ fields: Record<string, unknown>; message: string }>; counts: Map<LimitName, number>; log: LimitLog; clock: FakeClock } {
  const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const counts = new Map<LimitName, number>();
  const clock = new FakeClock();
  const log = new LimitLog(
    { ...silentLog, warn: (fields, message) => lines.push({ fields: fields as Record<string, unknown>, message }) },
    clock,
    { refused: (limit) => counts.set(limit, (counts.get(limit) ?? 0) + 1) },
  );
  return { lines, counts, log, clock };
}

describe("the limit log", () => {
  it("writes one warn line for a flood of refusals by one limit, and counts every one", () => {
    const { lines, counts, log } = recorder();

    for (let i = 0; i < 10_000; i++) log.refused("maxStreams", { max: 2 }, "Heartbeat refused: too many open streams");

    expect(lines).toEqual([{ fields: { max: 2, limit: "maxStreams", suppressed: 0 }, message: "Heartbeat refused: too many open streams" }]);
    expect(counts.get("maxStreams")).toBe(10_000);
  });

  it("writes the next line after 10 s, saying how many refusals went unlogged", () => {
    const { lines, log, clock } = recorder();
    for (let i = 0; i < 5; i++) log.refused("maxWatchers", {}, "WatchAgents refused");

    clock.advance(10_000);
    log.refused("maxWatchers", {}, "WatchAgents refused");

    expect(lines.map((line) => line.fields["suppressed"])).toEqual([0, 4]);
  });

  it("keeps limits apart: a flood of one does not silence another", () => {
    const { lines, log } = recorder();
    for (let i = 0; i < 100; i++) log.refused("maxRegistrationsPerSecond", {}, "Register refused");

    log.refused("maxMessageBytes", {}, "request refused");

    expect(lines.map((line) => line.fields["limit"])).toEqual(["maxRegistrationsPerSecond", "maxMessageBytes"]);
  });

  it("names the limit itself, whatever the fields say", () => {
    const { lines, log } = recorder();

    log.refused("maxStreams", { limit: "something else" }, "refused");

    expect(lines[0]?.fields["limit"]).toBe("maxStreams");
  });
});
