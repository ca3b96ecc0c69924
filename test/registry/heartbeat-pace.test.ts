// The rate-scaled interval: past a cap on fleet-wide beats per second, agents are told a longer interval
// (fleet / cap) and judged by the one they were told. Through the registry on fake time.

import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import { HeartbeatPace } from "../../src/registry/heartbeat-pace.js";
import type { HeartbeatSession } from "../../src/registry/heartbeat-session.js";
import { parseRegistration } from "../../src/registry/registration.js";
import { Registry } from "../../src/registry/registry.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";
import { settle } from "../support/settle.js";

const INTERVAL = 1000;
const TIMEOUT = 3000;
/** Two beats a second: a fleet past 2 agents is told more than 1 s. */
const CAP = 2;
/** Whole fleets fall silent here, which the offline guard would hold: these tests are about the pace alone. */
const NO_GUARD = { share: 0, minFleet: 10, maxHoldMs: 300_000 };

const id = (n: number): AgentId => `3f2b8c1e-6d4a-4f7e-9b1c-${String(n).padStart(12, "0")}` as AgentId;

const opened: Registry[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function openRegistry(maxBeatsPerSecond = CAP): Promise<{ clock: FakeClock; registry: Registry; register(n: number): Promise<number> }> {
  const clock = new FakeClock();
  const registry = await Registry.open({
    store: new MemoryStore(),
    clock,
    heartbeatIntervalMs: INTERVAL,
    agentTimeoutMs: TIMEOUT,
    maxBeatsPerSecond,
    offlineGuard: NO_GUARD,
  });
  opened.push(registry);
  return {
    clock,
    registry,
    async register(n) {
      const registration = parseRegistration({ agentId: id(n), hostname: `gpu-${n}`, ipAddress: "10.0.0.7", port: 0, ollamaVersion: "", labels: {} });
      return (await registry.register(registration, undefined)).heartbeatIntervalMs;
    },
  };
}

async function beat(session: HeartbeatSession): Promise<number> {
  const result = await session.beat({ leaving: false });
  return result.intervalMs;
}

describe("HeartbeatPace", () => {
  it("tells the configured interval while the fleet is within the cap, and fleet / cap past it", () => {
    const pace = new HeartbeatPace({ heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000, maxBeatsPerSecond: 100 });
    expect(pace.intervalFor(3000)).toBe(30_000);
    expect(pace.intervalFor(3001)).toBe(30_010);
    expect(pace.intervalFor(10_000)).toBe(100_000);
  });

  it("stretches the timeout in the ratio the interval was stretched", () => {
    const pace = new HeartbeatPace({ heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000, maxBeatsPerSecond: 100 });
    expect(pace.timeoutFor(30_000)).toBe(60_000);
    expect(pace.timeoutFor(100_000)).toBe(200_000);
  });

  it("never stretches without a cap", () => {
    const pace = new HeartbeatPace({ heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000, maxBeatsPerSecond: 0 });
    expect(pace.intervalFor(1_000_000)).toBe(30_000);
  });
});

describe("the rate-scaled interval", () => {
  it("tells each new agent a longer interval as the fleet grows past the cap", async () => {
    const { register } = await openRegistry();
    const told = [];
    for (let n = 1; n <= 10; n++) told.push(await register(n));
    // The Register of agent n is told the interval for the fleet it makes: n agents, 2 beats a second.
    expect(told).toEqual([1000, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000]);
  });

  it("tells an early agent the longer interval in its next ack, and judges it by that from then on", async () => {
    const { clock, registry, register } = await openRegistry();
    await register(1);
    const session = registry.openHeartbeat(id(1), () => undefined);
    const others = [];
    for (let n = 2; n <= 10; n++) {
      await register(n);
      others.push(registry.openHeartbeat(id(n), () => undefined));
    }

    clock.advance(INTERVAL);
    expect(await beat(session)).toBe(5000);
    for (const other of others) await beat(other);
    // Beating at the interval it was told keeps it ONLINE, far past the configured timeout.
    for (let round = 0; round < 4; round++) {
      clock.advance(5000);
      await settle();
      expect(registry.get(id(1)).status).toBe("online");
      expect(await beat(session)).toBe(5000);
      for (const other of others) await beat(other);
    }
    expect(registry.get(id(1)).missedHeartbeats).toBe(0);
  });

  it("turns a silent agent OFFLINE once the stretched timeout passes, not before and not after", async () => {
    const { clock, registry, register } = await openRegistry();
    for (let n = 1; n <= 10; n++) await register(n);
    const session = registry.openHeartbeat(id(10), () => undefined);
    expect(await beat(session)).toBe(5000);

    clock.advance(15_000);
    await settle();
    expect(registry.get(id(10)).status).toBe("online");
    expect(registry.get(id(10)).missedHeartbeats).toBe(3);
    clock.advance(1);
    await settle();
    expect(registry.get(id(10)).status).toBe("offline");
  });

  it("judges an agent told a shorter interval by the longer one until it has beaten at the new one", async () => {
    const { clock, registry, register } = await openRegistry();
    for (let n = 1; n <= 10; n++) await register(n);
    const session = registry.openHeartbeat(id(1), () => undefined);
    expect(await beat(session)).toBe(5000);
    // The fleet shrinks to 2: the next ack tells 1 s, but the beat after it may still come 5 s later.
    for (let n = 3; n <= 10; n++) await registry.deregister(id(n));
    clock.advance(5000);
    expect(await beat(session)).toBe(1000);

    clock.advance(5000);
    await settle();
    expect(registry.get(id(1)).status).toBe("online");
    expect(await beat(session)).toBe(1000);
    clock.advance(TIMEOUT + 1);
    await settle();
    expect(registry.get(id(1)).status).toBe("offline");
  });

  it("grants agents restored after a restart the grace of the interval a fleet their size is told", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const first = await Registry.open({ store, clock, heartbeatIntervalMs: INTERVAL, agentTimeoutMs: TIMEOUT, maxBeatsPerSecond: CAP, offlineGuard: NO_GUARD });
    for (let n = 1; n <= 10; n++) {
      await first.register(parseRegistration({ agentId: id(n), hostname: `gpu-${n}`, ipAddress: "10.0.0.7", port: 0, ollamaVersion: "", labels: {} }), undefined);
    }
    await first.close();

    const second = await Registry.open({ store, clock, heartbeatIntervalMs: INTERVAL, agentTimeoutMs: TIMEOUT, maxBeatsPerSecond: CAP, offlineGuard: NO_GUARD });
    opened.push(second);
    expect(second.toldIntervalMs).toBe(5000);
    clock.advance(15_000);
    await settle();
    expect(second.stats()).toMatchObject({ online: 10, offline: 0 });
    clock.advance(1);
    await settle();
    expect(second.stats()).toMatchObject({ online: 0, offline: 10 });
  });
});
