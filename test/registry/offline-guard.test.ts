// The offline guard, through the registry on fake time: a fleet of 20 with streams open, some of which fall
// silent at once. What callers see (status, liveness_held, watch events, the log line) is what is checked.

import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { HeartbeatSession } from "../../src/registry/heartbeat-session.js";
import { DEFAULT_OFFLINE_GUARD, type OfflineGuardSettings } from "../../src/registry/offline-guard.js";
import { parseRegistration } from "../../src/registry/registration.js";
import { Registry } from "../../src/registry/registry.js";
import type { WatchEvent } from "../../src/registry/watcher.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";
import { settle } from "../support/settle.js";

const INTERVAL = 30_000;
const TIMEOUT = 60_000;
const MAX_HOLD = 300_000;
const FLEET = 20;

const id = (n: number): AgentId => `3f2b8c1e-6d4a-4f7e-9b1c-${String(n).padStart(12, "0")}` as AgentId;

const opened: Registry[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

interface Fleet {
  readonly clock: FakeClock;
  readonly registry: Registry;
  readonly ids: readonly AgentId[];
  readonly sessions: Map<AgentId, HeartbeatSession>;
  readonly errors: string[];
  /** Every agent in `beating` beats; the others stay silent with their streams open. */
  beat(beating: readonly AgentId[]): Promise<void>;
  /** Moves time by `ms` in steps of one interval, the agents in `beating` beating at each step. */
  run(ms: number, beating: readonly AgentId[]): Promise<void>;
  statuses(of: readonly AgentId[]): { online: number; offline: number; held: number };
}

async function aFleet(guard: OfflineGuardSettings = DEFAULT_OFFLINE_GUARD, size = FLEET): Promise<Fleet> {
  const clock = new FakeClock();
  const errors: string[] = [];
  const log = { debug() {}, info() {}, warn() {}, error: (_: object, message: string) => errors.push(message) };
  const registry = await Registry.open({
    store: new MemoryStore(),
    clock,
    heartbeatIntervalMs: INTERVAL,
    agentTimeoutMs: TIMEOUT,
    offlineGuard: guard,
    log,
  });
  opened.push(registry);
  const ids = Array.from({ length: size }, (_, n) => id(n + 1));
  const sessions = new Map<AgentId, HeartbeatSession>();
  for (const agentId of ids) {
    const registration = parseRegistration({ agentId, hostname: `gpu-${agentId.slice(-2)}`, ipAddress: "10.0.0.7", port: 0, ollamaVersion: "0.5.7", labels: {} });
    await registry.register(registration, undefined);
    sessions.set(agentId, registry.openHeartbeat(agentId, () => undefined));
  }
  await settle();
  const beat = async (beating: readonly AgentId[]): Promise<void> => {
    for (const agentId of beating) await sessions.get(agentId)?.beat({ leaving: false });
    await settle();
  };
  return {
    clock,
    registry,
    ids,
    sessions,
    errors,
    beat,
    async run(ms, beating) {
      for (let left = ms; left > 0; left -= INTERVAL) {
        clock.advance(Math.min(INTERVAL, left));
        await settle();
        await beat(beating);
      }
    },
    statuses(of) {
      const views = of.map((agentId) => registry.get(agentId));
      return {
        online: views.filter((view) => view.status === "online").length,
        offline: views.filter((view) => view.status === "offline").length,
        held: views.filter((view) => view.livenessHeld).length,
      };
    },
  };
}

describe("the offline guard", () => {
  it("holds 12 of 20 nodes that fall silent at once ONLINE, shown as held, for as long as the hold lasts", async () => {
    const fleet = await aFleet();
    const silent = fleet.ids.slice(0, 12);
    const beating = fleet.ids.slice(12);

    await fleet.run(TIMEOUT + 1, beating);
    expect(fleet.statuses(silent)).toEqual({ online: 12, offline: 0, held: 12 });
    expect(fleet.statuses(beating)).toEqual({ online: 8, offline: 0, held: 0 });
    expect(fleet.registry.offlineHold).toMatchObject({ silent: 12, fleet: 20, held: 12 });
    expect(fleet.registry.get(silent[0] as AgentId).missedHeartbeats).toBe(2);
    expect(fleet.errors).toEqual([expect.stringMatching(/^offline guard engaged: 12 of 20 nodes stopped beating/)]);

    await fleet.run(MAX_HOLD - INTERVAL, beating);
    expect(fleet.statuses(silent)).toEqual({ online: 12, offline: 0, held: 12 });
    expect(fleet.registry.get(silent[0] as AgentId).missedHeartbeats).toBeGreaterThanOrEqual(11);
  });

  it("turns the other 2 OFFLINE one interval after 10 of the 12 held nodes beat again", async () => {
    const fleet = await aFleet();
    const silent = fleet.ids.slice(0, 12);
    const beating = fleet.ids.slice(12);
    await fleet.run(TIMEOUT + 1, beating);

    const back = silent.slice(0, 10);
    await fleet.beat(back);
    fleet.clock.advance(25);
    await settle();
    // The hold is over; the two still silent stay held (suspect) for the one interval they have left.
    expect(fleet.registry.offlineHold).toBeUndefined();
    expect(fleet.registry.stats()).toMatchObject({ guardActive: false, held: 2 });
    expect(fleet.statuses(silent.slice(10))).toEqual({ online: 2, offline: 0, held: 2 });

    fleet.clock.advance(INTERVAL - 100);
    await settle();
    expect(fleet.statuses(silent.slice(10))).toEqual({ online: 2, offline: 0, held: 2 });
    fleet.clock.advance(100);
    await settle();
    expect(fleet.statuses(back)).toEqual({ online: 10, offline: 0, held: 0 });
    expect(fleet.statuses(silent.slice(10))).toEqual({ online: 0, offline: 2, held: 0 });
    expect(fleet.registry.stats()).toMatchObject({ guardActive: false, held: 0 });
  });

  it("turns none of a fleet that comes back over an interval OFFLINE, though the hold ends when the first few beat", async () => {
    const fleet = await aFleet();
    const silent = fleet.ids.slice(0, 12);
    const beating = fleet.ids.slice(12);
    await fleet.run(TIMEOUT + 1, beating);

    // Two beats bring the silent share to half, under the threshold: the hold ends. The other ten beat over
    // the next interval, as they would when the registry's network comes back.
    await fleet.beat(silent.slice(0, 2));
    fleet.clock.advance(25);
    await settle();
    expect(fleet.registry.offlineHold).toBeUndefined();
    const statusBeforeItsBeat: string[] = [];
    for (const agentId of silent.slice(2)) {
      fleet.clock.advance((INTERVAL - 100) / 10);
      await settle();
      statusBeforeItsBeat.push(fleet.registry.get(agentId).status);
      await fleet.beat([agentId]);
    }

    expect(statusBeforeItsBeat).toEqual(silent.slice(2).map(() => "online"));
    expect(fleet.statuses(fleet.ids)).toEqual({ online: 20, offline: 0, held: 0 });
  });

  it("ends a hold that outlasts its maximum with every node still silent OFFLINE", async () => {
    const fleet = await aFleet();
    const silent = fleet.ids.slice(0, 12);
    const beating = fleet.ids.slice(12);
    await fleet.run(TIMEOUT + 1, beating);
    const engagedAt = fleet.clock.monotonic();

    await fleet.run(MAX_HOLD - INTERVAL, beating);
    expect(fleet.statuses(silent)).toEqual({ online: 12, offline: 0, held: 12 });
    fleet.clock.advance(engagedAt + MAX_HOLD - fleet.clock.monotonic());
    await settle();

    expect(fleet.statuses(silent)).toEqual({ online: 0, offline: 12, held: 0 });
    expect(fleet.statuses(beating)).toEqual({ online: 8, offline: 0, held: 0 });
    expect(fleet.registry.offlineHold).toBeUndefined();
    expect(fleet.errors.at(-1)).toMatch(/^offline guard released after its maximum hold of 300 s/);
  });

  it("does not hold again at once after a hold ran out, while the fleet is still mostly silent", async () => {
    const fleet = await aFleet();
    const beating = fleet.ids.slice(14);
    await fleet.run(TIMEOUT + 1, fleet.ids.slice(12));
    await fleet.run(MAX_HOLD, fleet.ids.slice(12));
    expect(fleet.statuses(fleet.ids.slice(0, 12))).toMatchObject({ offline: 12 });

    // Two more stop while 12 of 20 are OFFLINE from the hold that ran out: expired as usual.
    await fleet.run(TIMEOUT + INTERVAL, beating);
    expect(fleet.statuses(fleet.ids.slice(12, 14))).toEqual({ online: 0, offline: 2, held: 0 });
  });

  it("expires 3 of 20 silent nodes on time: no hold", async () => {
    const fleet = await aFleet();
    const silent = fleet.ids.slice(0, 3);
    await fleet.run(TIMEOUT, fleet.ids.slice(3));
    expect(fleet.statuses(silent)).toEqual({ online: 3, offline: 0, held: 0 });

    fleet.clock.advance(1);
    await settle();
    expect(fleet.statuses(silent)).toEqual({ online: 0, offline: 3, held: 0 });
    expect(fleet.registry.offlineHold).toBeUndefined();
    expect(fleet.errors).toEqual([]);
  });

  it("never holds a node that leaves, during a hold", async () => {
    const fleet = await aFleet();
    const silent = fleet.ids.slice(0, 12);
    const leaver = fleet.ids[19] as AgentId;
    await fleet.run(TIMEOUT + 1, fleet.ids.slice(12));

    await fleet.sessions.get(leaver)?.beat({ leaving: true });
    await settle();
    expect(fleet.registry.get(leaver)).toMatchObject({ status: "offline", livenessHeld: false });
    expect(fleet.statuses(silent)).toMatchObject({ held: 12 });
  });

  it("turns a held node that leaves OFFLINE at once, no longer held", async () => {
    const fleet = await aFleet();
    const held = fleet.ids[0] as AgentId;
    await fleet.run(TIMEOUT + 1, fleet.ids.slice(12));

    await fleet.sessions.get(held)?.beat({ leaving: true });
    await settle();
    expect(fleet.registry.get(held)).toMatchObject({ status: "offline", livenessHeld: false });
  });

  it("with the guard off, turns 12 silent nodes OFFLINE on time", async () => {
    const fleet = await aFleet({ ...DEFAULT_OFFLINE_GUARD, share: 0 });
    const silent = fleet.ids.slice(0, 12);
    await fleet.run(TIMEOUT, fleet.ids.slice(12));
    expect(fleet.statuses(silent)).toEqual({ online: 12, offline: 0, held: 0 });

    fleet.clock.advance(1);
    await settle();
    expect(fleet.statuses(silent)).toEqual({ online: 0, offline: 12, held: 0 });
  });

  it("does not act on a fleet smaller than its minimum", async () => {
    const fleet = await aFleet(DEFAULT_OFFLINE_GUARD, 9);
    await fleet.run(TIMEOUT + 1, fleet.ids.slice(8));
    expect(fleet.statuses(fleet.ids.slice(0, 8))).toEqual({ online: 0, offline: 8, held: 0 });
  });

  it("holds a fleet that stops at once even when its last beats were spread over most of an interval", async () => {
    const fleet = await aFleet();
    const silent = fleet.ids.slice(0, 12);
    const beating = fleet.ids.slice(12);
    // Half of the 12 beat last at t=0, the other half 20 s later (a loaded network delivers beats unevenly);
    // at the first deadline (t=60 s) those 20 s late are silent for 40 s, more than interval + a quarter.
    fleet.clock.advance(20_000);
    await fleet.beat([...silent.slice(6), ...beating]);
    await fleet.run(TIMEOUT - 20_000 + 1, beating);
    expect(fleet.statuses(silent)).toEqual({ online: 12, offline: 0, held: 6 });
    await fleet.run(20_000, beating);
    expect(fleet.statuses(silent)).toEqual({ online: 12, offline: 0, held: 12 });
  });

  it("sees a fleet that goes silent in two waves within one timeout as one", async () => {
    const fleet = await aFleet();
    // 6 stop; 30 s later 6 more stop. The first 6 expire as usual (6 of 20); the next 6 make 12 within one timeout.
    await fleet.run(INTERVAL, fleet.ids.slice(6));
    await fleet.run(TIMEOUT + 1 - INTERVAL, fleet.ids.slice(12));
    expect(fleet.statuses(fleet.ids.slice(0, 6))).toEqual({ online: 0, offline: 6, held: 0 });

    await fleet.run(INTERVAL, fleet.ids.slice(12));
    expect(fleet.statuses(fleet.ids.slice(6, 12))).toEqual({ online: 6, offline: 0, held: 6 });
  });

  it("tells watchers each hold and its end as an UPDATED event, and the timeouts after it as status changes", async () => {
    const fleet = await aFleet();
    const watcher = fleet.registry.watch({ status: undefined, labels: [] });
    const events: WatchEvent[] = [];
    void (async () => {
      for await (const event of watcher) events.push(event);
    })();
    await settle();
    events.length = 0;

    await fleet.run(TIMEOUT + 1, fleet.ids.slice(12));
    const held = events.map((event) => [event.type, event.agent.id, event.agent.livenessHeld]);
    expect(held.sort()).toEqual(fleet.ids.slice(0, 12).map((agentId) => ["updated", agentId, true]));

    events.length = 0;
    await fleet.beat(fleet.ids.slice(0, 10));
    fleet.clock.advance(25);
    await settle();
    fleet.clock.advance(INTERVAL);
    await settle();
    expect(events.map((event) => [event.type, event.agent.livenessHeld, event.agent.status])).toEqual([
      ...fleet.ids.slice(0, 10).map(() => ["updated", false, "online"]),
      ["statusChanged", false, "offline"],
      ["statusChanged", false, "offline"],
    ]);
    watcher.close();
  });
});
