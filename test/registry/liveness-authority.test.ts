// The liveness authority on a fake clock whose wall and monotonic readings can move apart: deadlines on
// the monotonic clock, the grace at promotion, nothing judged while demoted.

import { describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import { LivenessAuthority } from "../../src/registry/liveness-authority.js";
import { anAgent } from "../store/agent-records.js";
import { FAKE_EPOCH, FakeClock } from "../support/fake-clock.js";

const INTERVAL = 30_000;
const TIMEOUT = 60_000;
const A = "11111111-1111-4111-8111-111111111111" as AgentId;

const record = (overrides: Partial<AgentRecord> = {}): AgentRecord => anAgent({ id: A, lastHeartbeat: FAKE_EPOCH, ...overrides });

/** A promoted authority following one ONLINE agent that beat just now; `expired` records each expiry's monotonic time. */
function following(): { clock: FakeClock; authority: LivenessAuthority; expired: number[] } {
  const clock = new FakeClock();
  const expired: number[] = [];
  const authority = new LivenessAuthority({
    clock,
    heartbeatIntervalMs: INTERVAL,
    agentTimeoutMs: TIMEOUT,
    onExpired: () => expired.push(clock.monotonic()),
  });
  authority.follow(record({ lastHeartbeat: clock.now() }));
  authority.promote();
  return { clock, authority, expired };
}

describe("LivenessAuthority", () => {
  it("expires an agent once the timeout has passed since its last beat, not at it", () => {
    const { clock, expired } = following();
    clock.advance(TIMEOUT);
    expect(expired).toEqual([]);
    clock.advance(1);
    expect(expired).toEqual([TIMEOUT + 1]);
  });

  it("moves the deadline with each beat", () => {
    const { clock, authority, expired } = following();
    clock.advance(50_000);
    authority.beat(A);
    clock.advance(TIMEOUT);
    expect(expired).toEqual([]);
    clock.advance(1);
    expect(expired).toEqual([50_000 + TIMEOUT + 1]);
  });

  it.each([
    ["forward", 10 * 60_000],
    ["back", -10 * 60_000],
  ])("changes no deadline when the wall clock steps %s by 10 minutes", (_, step) => {
    const { clock, authority, expired } = following();
    clock.advance(20_000);
    clock.stepWall(step);
    authority.beat(A);
    expect(authority.missed(A)).toBe(0);

    clock.advance(TIMEOUT);
    expect(expired).toEqual([]);
    expect(authority.missed(A)).toBe(2);
    clock.advance(1);
    expect(expired).toEqual([20_000 + TIMEOUT + 1]);
  });

  it("shows the last beat in wall time, as the clock read it then", () => {
    const { clock, authority } = following();
    clock.advance(5_000);
    authority.beat(A);
    const at = clock.now();
    clock.stepWall(-60_000);
    expect(authority.lastBeat(A)).toBe(at);
  });

  it("counts an agent restored ONLINE from its promotion, however old its stored beat", () => {
    const clock = new FakeClock();
    const expired: number[] = [];
    const authority = new LivenessAuthority({ clock, heartbeatIntervalMs: INTERVAL, agentTimeoutMs: TIMEOUT, onExpired: () => expired.push(clock.monotonic()) });
    authority.follow(record({ lastHeartbeat: clock.now() - 3_600_000 }));
    clock.advance(5_000);

    authority.promote();

    expect(authority.missed(A)).toBe(0);
    clock.advance(TIMEOUT);
    expect(expired).toEqual([]);
    clock.advance(1);
    expect(expired).toEqual([5_000 + TIMEOUT + 1]);
  });

  it("counts an agent restored OFFLINE's missed beats from its stored beat", () => {
    const clock = new FakeClock();
    const authority = new LivenessAuthority({ clock, heartbeatIntervalMs: INTERVAL, agentTimeoutMs: TIMEOUT, onExpired: () => undefined });
    authority.follow(record({ status: "offline", lastHeartbeat: clock.now() - 10 * 60_000 }));
    authority.promote();
    expect(authority.missed(A)).toBe(20);
  });

  it("judges no deadline while demoted, and grants a fresh grace when promoted again", () => {
    const { clock, authority, expired } = following();
    authority.demote();
    clock.advance(TIMEOUT * 3);
    expect(expired).toEqual([]);

    authority.promote();
    clock.advance(TIMEOUT);
    expect(expired).toEqual([]);
    clock.advance(1);
    expect(expired).toEqual([TIMEOUT * 4 + 1]);
  });

  it("stops judging an agent committed OFFLINE, and starts again, counting from then, when it is committed ONLINE", () => {
    const { clock, authority, expired } = following();
    authority.follow(record({ status: "offline" }));
    clock.advance(TIMEOUT * 2);
    expect(expired).toEqual([]);

    authority.follow(record({ status: "online" }));
    expect(authority.missed(A)).toBe(0);
    clock.advance(TIMEOUT + 1);
    expect(expired).toEqual([TIMEOUT * 3 + 1]);
  });

  it("says how long ago an agent's deadline passed, and nothing before it or once forgotten", () => {
    const { clock, authority } = following();
    clock.stall(TIMEOUT);
    expect(authority.overdueMs(A)).toBeUndefined();
    clock.stall(250);
    expect(authority.overdueMs(A)).toBe(250);
    authority.forget(A);
    expect(authority.overdueMs(A)).toBeUndefined();
    expect(authority.lastBeat(A)).toBeUndefined();
  });
});

describe("LivenessAuthority with replicas", () => {
  it("sets no deadline for an agent judged elsewhere, and shows its beats as the store gets them", () => {
    const { clock, authority, expired } = following();
    authority.judgedElsewhere(A);
    clock.advance(3 * TIMEOUT);
    expect(expired).toEqual([]);
    authority.follow(record({ lastHeartbeat: clock.now() - 1000 }));
    expect(authority.lastBeat(A)).toBe(clock.now() - 1000);
    expect(authority.missed(A)).toBe(0);
  });

  it("times an agent out at once when its claim lapsed, and judges it here again once it beats here", () => {
    const { clock, authority, expired } = following();
    authority.judgedElsewhere(A);
    clock.advance(1000);
    authority.lapsed(A);
    expect(expired).toEqual([1000]);

    const second = following();
    second.authority.judgedElsewhere(A);
    second.clock.advance(TIMEOUT);
    second.authority.beat(A);
    second.clock.advance(TIMEOUT + 1);
    expect(second.expired).toEqual([2 * TIMEOUT + 1]);
  });
});
