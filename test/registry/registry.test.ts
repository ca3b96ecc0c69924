import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord, AgentStatus, AgentView } from "../../src/registry/agent.js";
import { type ListQuery, parseLabelSelector, parsePageToken } from "../../src/registry/agent-query.js";
import { type RegistrationInput, parseRegistration } from "../../src/registry/registration.js";
import { RegistryError } from "../../src/registry/registry-error.js";
import { StoreConflict } from "../../src/registry/store.js";
import type { Transition } from "../../src/registry/transitions.js";
import { thrownBy } from "../support/registry-errors.js";
import type { HeartbeatSession } from "../../src/registry/heartbeat-session.js";
import { Registry } from "../../src/registry/registry.js";
import { FAKE_EPOCH, FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";
import { settle } from "../support/settle.js";

const INTERVAL = 30_000;
const TIMEOUT = 60_000;
const PEER = "192.0.2.10";
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Ids that sort in the order of their last digit. */
const id = (n: number): AgentId => `3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c3${n}` as AgentId;

const opened: Registry[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function openRegistry(records: AgentRecord[] = []): Promise<{
  clock: FakeClock;
  store: MemoryStore;
  registry: Registry;
}> {
  const clock = new FakeClock();
  const store = new MemoryStore(records, "/var/lib/agent-registry/agents.json");
  const registry = await Registry.open({ store, clock, heartbeatIntervalMs: INTERVAL, agentTimeoutMs: TIMEOUT });
  opened.push(registry);
  return { clock, store, registry };
}

function registration(overrides: Partial<RegistrationInput> = {}): ReturnType<typeof parseRegistration> {
  return parseRegistration({
    agentId: "",
    hostname: "gpu-01",
    ipAddress: "10.0.0.7",
    port: 0,
    ollamaVersion: "0.5.7",
    labels: {},
    ...overrides,
  });
}

function query(overrides: Partial<ListQuery> = {}): ListQuery {
  return { status: undefined, labels: [], pageSize: 0, after: undefined, ...overrides };
}

/** Opens a heartbeat session that records how the registry ended it. */
function stream(registry: Registry, agentId: AgentId): { session: HeartbeatSession; ended: RegistryError[] } {
  const ended: RegistryError[] = [];
  return { session: registry.openHeartbeat(agentId, (reason) => ended.push(reason)), ended };
}

const beat = { leaving: false } as const;

/** Tracks whether a promise has settled yet, without awaiting it. */
function watch<T>(promise: Promise<T>): { readonly done: boolean } {
  const state = { done: false };
  promise.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
}

async function rejectionOf(promise: Promise<unknown>): Promise<RegistryError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error("expected a RegistryError, got none");
}


describe("Registry", () => {
  describe("register", () => {
    it("gives an agent without an id a new UUID v4", async () => {
      const { registry } = await openRegistry();
      const { agent: first } = await registry.register(registration(), PEER);
      const { agent: second } = await registry.register(registration({ hostname: "gpu-02" }), PEER);
      expect(first.id).toMatch(UUID_V4);
      expect(second.id).toMatch(UUID_V4);
      expect(second.id).not.toBe(first.id);
    });

    it("keeps the id a node chose, in lower case", async () => {
      const { registry } = await openRegistry();
      const { agent } = await registry.register(registration({ agentId: id(1).toUpperCase() }), PEER);
      expect(agent.id).toBe(id(1));
      expect(registry.get(id(1)).hostname).toBe("gpu-01");
    });

    it("returns the agent online, connected to no stream, with what the node sent", async () => {
      const { clock, registry } = await openRegistry();
      const { agent } = await registry.register(registration({ labels: { gpu: "a100" } }), PEER);
      expect(agent).toEqual({
        id: agent.id,
        hostname: "gpu-01",
        ipAddress: "10.0.0.7",
        port: 11434,
        ollamaVersion: "0.5.7",
        labels: { gpu: "a100" },
        status: "online",
        lastHeartbeat: clock.now(),
        registeredAt: clock.now(),
        draining: false,
        streamConnected: false,
        livenessHeld: false,
        missedHeartbeats: 0,
      } satisfies AgentView);
    });

    it("updates the fields of a re-registered agent and keeps when it first registered", async () => {
      const { clock, registry } = await openRegistry();
      const { agent: first } = await registry.register(registration({ agentId: id(1) }), PEER);
      clock.advance(45_000);
      const { agent: again } = await registry.register(
        registration({ agentId: id(1), hostname: "gpu-01b", ipAddress: "10.0.0.8", port: 8080, ollamaVersion: "0.6.0", labels: { gpu: "h100" } }),
        PEER,
      );
      expect(again).toMatchObject({
        id: id(1),
        hostname: "gpu-01b",
        ipAddress: "10.0.0.8",
        port: 8080,
        ollamaVersion: "0.6.0",
        labels: { gpu: "h100" },
        registeredAt: first.registeredAt,
        lastHeartbeat: clock.now(),
        missedHeartbeats: 0,
      });
      expect(registry.size).toBe(1);
      expect(registry.list(query()).agents.map((a) => a.hostname)).toEqual(["gpu-01b"]);
    });

    it("brings an offline agent back online when it registers again", async () => {
      const { clock, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      clock.advance(TIMEOUT + 1);
      await settle();
      expect(registry.get(id(1)).status).toBe("offline");
      const { agent: again } = await registry.register(registration({ agentId: id(1) }), PEER);
      expect(again.status).toBe("online");
      clock.advance(TIMEOUT);
      await settle();
      expect(registry.get(id(1)).status).toBe("online");
    });

    it("uses the peer address when the node sends no ip_address", async () => {
      const { registry } = await openRegistry();
      const { agent } = await registry.register(registration({ ipAddress: "" }), PEER);
      expect(agent.ipAddress).toBe(PEER);
    });

    it("refuses a registration without ip_address when the peer address is unknown", async () => {
      const { registry } = await openRegistry();
      const error = await rejectionOf(registry.register(registration({ ipAddress: "" }), undefined));
      expect(error.kind).toBe("invalidArgument");
      expect(error.message).toMatch(/^ip_address: /);
      expect(registry.size).toBe(0);
    });

    it("acknowledges only once the store has made the agent durable", async () => {
      const { store, registry } = await openRegistry();
      store.holdWrites();
      const registering = registry.register(registration({ agentId: id(1) }), PEER);
      const state = watch(registering);
      await settle();
      expect(state.done).toBe(false);
      expect(store.get(id(1))).toBeUndefined();

      store.releaseWrites();
      const { agent } = await registering;
      expect(store.writes).toBe(1);
      expect(store.get(id(1))).toMatchObject({ id: id(1), hostname: "gpu-01", status: "online", registeredAt: agent.registeredAt });
    });

    it("starts the agent's timeout from the acknowledgement, not from the request", async () => {
      const { clock, store, registry } = await openRegistry();
      store.holdWrites();
      const registering = registry.register(registration({ agentId: id(1) }), PEER);
      clock.advance(5_000); // a slow disk
      store.releaseWrites();
      const { agent } = await registering;
      expect(agent.lastHeartbeat).toBe(clock.now());
      clock.advance(TIMEOUT);
      await settle();
      expect(registry.get(id(1)).status).toBe("online");
      clock.advance(1);
      await settle();
      expect(registry.get(id(1)).status).toBe("offline");
    });

    it("rejects with unavailable, naming the problem (and, in detail, the store), when the store cannot write", async () => {
      const { store, registry } = await openRegistry();
      store.failNextWrites(1);
      const error = await rejectionOf(registry.register(registration({ agentId: id(1) }), PEER));
      expect(error.kind).toBe("unavailable");
      expect(error.message).toBe("the store cannot write: the write failed; the change was not acknowledged: retry once the store is writable");
      expect(error.detailedMessage).toContain(store.location);
      expect(store.get(id(1))).toBeUndefined();
    });

    it("takes back a new agent whose registration was not written, so a retry leaves no orphan", async () => {
      const { store, registry } = await openRegistry();
      store.failNextWrites(1);
      await rejectionOf(registry.register(registration({ hostname: "gpu-01" }), PEER));
      const { agent: retried } = await registry.register(registration({ hostname: "gpu-01" }), PEER);
      await settle();
      expect(registry.list(query()).agents.map((agent) => agent.id)).toEqual([retried.id]);
      expect((await store.load()).agents.map(({ record }) => record.id)).toEqual([retried.id]);
    });

    it("keeps nothing of an update that was not written: reads show the agent as it is on disk", async () => {
      const { store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1), hostname: "gpu-01" }), PEER);
      store.failNextWrites(1);
      await rejectionOf(registry.register(registration({ agentId: id(1), hostname: "gpu-01b" }), PEER));
      await registry.register(registration({ agentId: id(2), hostname: "gpu-02" }), PEER);
      expect(registry.get(id(1)).hostname).toBe("gpu-01");
      expect(store.get(id(1))?.hostname).toBe("gpu-01");
      expect(store.get(id(2))?.hostname).toBe("gpu-02");
    });

    it("shows a new agent to readers only once its registration is durable", async () => {
      const { store, registry } = await openRegistry();
      store.holdWrites();
      const registering = registry.register(registration({ agentId: id(1) }), PEER);
      await settle();
      expect(thrownBy(() => registry.get(id(1))).kind).toBe("notFound");
      expect(registry.list(query()).agents).toEqual([]);
      store.releaseWrites();
      await registering;
      expect(registry.get(id(1)).status).toBe("online");
    });
  });

  describe("get", () => {
    it("answers notFound, naming the id, for an unknown agent", async () => {
      const { registry } = await openRegistry();
      const error = thrownBy(() => registry.get(id(9)));
      expect(error.kind).toBe("notFound");
      expect(error.message).toContain(id(9));
    });
  });

  describe("liveness", () => {
    it("keeps an agent online but counts one missed beat once 30 s pass without a beat", async () => {
      const { clock, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      clock.advance(INTERVAL - 1);
      expect(registry.get(id(1))).toMatchObject({ status: "online", missedHeartbeats: 0 });
      clock.advance(101);
      expect(registry.get(id(1))).toMatchObject({ status: "online", missedHeartbeats: 1 });
    });

    it("marks an agent offline once 60 s pass without a beat, within 1 s of the deadline", async () => {
      const { clock, registry } = await openRegistry();
      const { agent } = await registry.register(registration({ agentId: id(1) }), PEER);
      const deadline = agent.lastHeartbeat + TIMEOUT;

      let flippedAt: number | undefined;
      while (flippedAt === undefined && clock.now() < deadline + 10_000) {
        clock.advance(100);
        await settle();
        if (registry.get(id(1)).status === "offline") flippedAt = clock.now();
      }

      expect(flippedAt).toBeDefined();
      expect(flippedAt).toBeGreaterThan(deadline);
      expect(flippedAt).toBeLessThanOrEqual(deadline + 1000);
      expect(registry.get(id(1)).missedHeartbeats).toBe(2);
    });

    it("is still online exactly at the deadline (offline means strictly more than 60 s)", async () => {
      const { clock, registry } = await openRegistry();
      const { agent } = await registry.register(registration({ agentId: id(1) }), PEER);
      clock.advanceTo(agent.lastHeartbeat + TIMEOUT);
      await settle();
      expect(registry.get(id(1)).status).toBe("online");
      clock.advance(1);
      await settle();
      expect(registry.get(id(1)).status).toBe("offline");
    });

    it("tells its observer how long past the deadline a timeout was made durable", async () => {
      const clock = new FakeClock();
      const transitions: Transition[] = [];
      const registry = await Registry.open({
        store: new MemoryStore(),
        clock,
        heartbeatIntervalMs: INTERVAL,
        agentTimeoutMs: TIMEOUT,
        observer: { transition: (transition) => transitions.push(transition) },
      });
      opened.push(registry);
      await registry.register(registration({ agentId: id(1) }), PEER);
      await registry.register(registration({ agentId: id(2), hostname: "gpu-02" }), PEER);
      await registry.deregister(id(2));

      // The event loop was stalled 700 ms past the deadline; the timer lets I/O run 50 ms, then judges.
      clock.stall(TIMEOUT + 700);
      clock.advance(50);
      await settle();

      expect(transitions.filter((transition) => transition.reason === "timeout")).toEqual([
        { from: "online", to: "offline", reason: "timeout", lateMs: 750 },
      ]);
    });

    it("persists the offline status", async () => {
      const { clock, store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      clock.advance(TIMEOUT + 1);
      await settle();
      expect(store.get(id(1))?.status).toBe("offline");
    });

    it("keeps an agent that beats every 30 s online indefinitely", async () => {
      const { clock, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      for (let i = 0; i < 20; i++) {
        clock.advance(INTERVAL);
        await session.beat(beat);
        expect(registry.get(id(1))).toMatchObject({ status: "online", missedHeartbeats: 0, lastHeartbeat: clock.now() });
      }
    });

    it("brings an offline agent back online with a beat, acknowledged once durable", async () => {
      const { clock, store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      clock.advance(TIMEOUT + 1);
      await settle();
      expect(store.get(id(1))?.status).toBe("offline");

      store.holdWrites();
      const beating = Promise.resolve(session.beat(beat));
      const state = watch(beating);
      await settle();
      expect(state.done).toBe(false);
      expect(store.get(id(1))?.status).toBe("offline");

      store.releaseWrites();
      const result = await beating;
      expect(result).toEqual({ serverTime: clock.now(), status: "online", intervalMs: 30_000 });
      expect(store.get(id(1))?.status).toBe("online");
      expect(registry.get(id(1))).toMatchObject({ status: "online", missedHeartbeats: 0, lastHeartbeat: clock.now() });
    });

    it("acknowledges the beats after a status change that failed to write only once it is durable", async () => {
      const { clock, store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      clock.advance(TIMEOUT + 1);
      await settle();
      store.failNextWrites(1);
      await expect(Promise.resolve(session.beat(beat))).rejects.toBeInstanceOf(RegistryError);
      expect(store.get(id(1))?.status).toBe("offline");

      // Nothing of the failed write was kept: the agent is still OFFLINE, so this beat changes its status
      // again and is acknowledged only once that is durable.
      store.holdWrites();
      const state = watch(Promise.resolve(session.beat(beat)));
      await settle();
      expect(state.done).toBe(false);
      store.releaseWrites();
      await settle();
      expect(state.done).toBe(true);
      expect(store.get(id(1))?.status).toBe("online");
      // Once durable, beats are immediate again.
      expect(session.beat(beat)).not.toBeInstanceOf(Promise);
    });

    it("marks an agent offline at once when it beats with leaving", async () => {
      const { store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      const result = await session.beat({ leaving: true });
      expect(result.status).toBe("offline");
      expect(registry.get(id(1)).status).toBe("offline");
      expect(store.get(id(1))?.status).toBe("offline");
    });

    it("keeps an agent whose stream broke without leaving online, disconnected, until its deadline", async () => {
      const { clock, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      clock.advance(10_000);
      await session.beat(beat);
      const lastBeat = clock.now();
      expect(registry.get(id(1)).streamConnected).toBe(true);

      session.close();
      await settle();
      expect(registry.get(id(1))).toMatchObject({ status: "online", streamConnected: false });

      clock.advanceTo(lastBeat + TIMEOUT);
      await settle();
      expect(registry.get(id(1))).toMatchObject({ status: "online", streamConnected: false });
      clock.advance(100);
      await settle();
      expect(registry.get(id(1))).toMatchObject({ status: "offline", streamConnected: false });
    });

    it("records draining and a new ollama_version sent with a beat", async () => {
      const { registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      await session.beat({ leaving: false, draining: true, ollamaVersion: "0.6.1" });
      expect(registry.get(id(1))).toMatchObject({ draining: true, ollamaVersion: "0.6.1" });
      await session.beat(beat);
      expect(registry.get(id(1))).toMatchObject({ draining: true, ollamaVersion: "0.6.1" });
    });
  });

  describe("after a restart", () => {
    const start = FAKE_EPOCH; // when the fake clock, so the registry, starts
    const restored = (status: AgentStatus, lastHeartbeat: number, n = 1): AgentRecord => ({
      id: id(n),
      hostname: `gpu-0${n}`,
      ipAddress: "10.0.0.7",
      port: 11434,
      ollamaVersion: "0.5.7",
      status,
      lastHeartbeat,
      registeredAt: lastHeartbeat - 86_400_000,
      labels: {},
      draining: false,
      streamConnected: false,
      livenessHeld: false,
    });

    it("keeps an agent restored online for a full timeout even though its last beat is 10 minutes old", async () => {
      const lastHeartbeat = start - 10 * 60_000;
      const { clock, registry } = await openRegistry([restored("online", lastHeartbeat)]);
      expect(registry.get(id(1))).toMatchObject({ status: "online", lastHeartbeat, missedHeartbeats: 0 });

      clock.advance(INTERVAL + 1);
      expect(registry.get(id(1))).toMatchObject({ status: "online", lastHeartbeat, missedHeartbeats: 1 });

      clock.advanceTo(start + TIMEOUT);
      await settle();
      expect(registry.get(id(1))).toMatchObject({ status: "online", lastHeartbeat, missedHeartbeats: 2 });

      clock.advance(100);
      await settle();
      expect(registry.get(id(1))).toMatchObject({ status: "offline", lastHeartbeat });
    });

    it("counts a recent last beat, not the start, when it is later", async () => {
      const lastHeartbeat = start + 20_000; // written by a peer whose clock runs ahead
      const { clock, registry } = await openRegistry([restored("online", lastHeartbeat)]);
      clock.advanceTo(start + TIMEOUT + 1);
      await settle();
      expect(registry.get(id(1)).status).toBe("online");
      clock.advanceTo(lastHeartbeat + TIMEOUT + 1);
      await settle();
      expect(registry.get(id(1)).status).toBe("offline");
    });

    it("counts an agent restored offline's missed beats from its last beat, not from the start", async () => {
      const lastHeartbeat = start - 10 * 60_000;
      const { registry } = await openRegistry([restored("offline", lastHeartbeat)]);
      expect(registry.get(id(1))).toMatchObject({ status: "offline", missedHeartbeats: (10 * 60_000) / INTERVAL });
    });

    it("keeps an agent restored offline offline", async () => {
      const { clock, registry } = await openRegistry([restored("offline", start - 10 * 60_000)]);
      expect(registry.get(id(1)).status).toBe("offline");
      clock.advance(TIMEOUT * 2);
      expect(registry.get(id(1)).status).toBe("offline");
    });

    it("lets a restored agent keep itself online by beating", async () => {
      const { clock, registry } = await openRegistry([restored("online", start - 10 * 60_000)]);
      const { session } = stream(registry, id(1));
      clock.advance(50_000);
      await session.beat(beat);
      clock.advance(50_000);
      expect(registry.get(id(1))).toMatchObject({ status: "online", missedHeartbeats: 1 });
    });
  });

  describe("heartbeat streams", () => {
    it("refuses a stream for an unknown agent with notFound", async () => {
      const { registry } = await openRegistry();
      const error = thrownBy(() => registry.openHeartbeat(id(9), () => {}));
      expect(error.kind).toBe("notFound");
      expect(error.message).toContain(id(9));
    });

    it("shows the agent connected while a stream is open", async () => {
      const { registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      expect(registry.get(id(1)).streamConnected).toBe(false);
      stream(registry, id(1));
      await settle();
      expect(registry.get(id(1)).streamConnected).toBe(true);
    });

    it("ends the older of two streams for the same agent with aborted", async () => {
      const { registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const first = stream(registry, id(1));
      const second = stream(registry, id(1));

      expect(first.ended.map((e) => e.kind)).toEqual(["aborted"]);
      expect(second.ended).toEqual([]);
      expect(thrownBy(() => first.session.beat(beat)).kind).toBe("aborted");
      await expect(Promise.resolve(second.session.beat(beat))).resolves.toMatchObject({ status: "online" });
    });

    it("keeps the agent connected when the superseded stream closes late", async () => {
      const { registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const first = stream(registry, id(1));
      stream(registry, id(1));
      first.session.close();
      await settle();
      expect(registry.get(id(1)).streamConnected).toBe(true);
    });

    it("ends an agent's stream with notFound and forgets the agent when it is deregistered", async () => {
      const { store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session, ended } = stream(registry, id(1));

      await registry.deregister(id(1));

      expect(ended.map((e) => e.kind)).toEqual(["notFound"]);
      expect(thrownBy(() => registry.get(id(1))).kind).toBe("notFound");
      expect(thrownBy(() => session.beat(beat)).kind).toBe("notFound");
      expect(registry.list(query()).agents).toEqual([]);
      expect(store.get(id(1))).toBeUndefined();
    });

    it("answers notFound when deregistering an unknown agent", async () => {
      const { registry } = await openRegistry();
      const error = await rejectionOf(registry.deregister(id(9)));
      expect(error.kind).toBe("notFound");
      expect(error.message).toContain(id(9));
    });

    it("never times out a deregistered agent", async () => {
      const { clock, store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      await registry.deregister(id(1));
      const commits = store.writes;
      clock.advance(TIMEOUT * 2);
      await settle();
      expect(store.writes).toBe(commits);
      expect(store.size).toBe(0);
    });
  });

  describe("persistence of heartbeats", () => {
    it("writes 1000 plain beats from 10 agents over 10 s in about one commit a second", async () => {
      const { clock, store, registry } = await openRegistry();
      const sessions: HeartbeatSession[] = [];
      for (let n = 0; n < 10; n++) {
        await registry.register(registration({ agentId: id(n), hostname: `gpu-0${n}` }), PEER);
        sessions.push(stream(registry, id(n)).session);
      }
      const before = store.writes;

      let beats = 0;
      for (let step = 0; step < 100; step++) {
        clock.advance(100);
        for (const session of sessions) {
          const result = await session.beat(beat);
          expect(result.status).toBe("online");
          beats += 1;
        }
        await settle();
      }
      clock.advance(1000);
      await settle();

      expect(beats).toBe(1000);
      const written = store.writes - before;
      expect(written).toBeGreaterThanOrEqual(1);
      expect(written).toBeLessThanOrEqual(11);
      for (let n = 0; n < 10; n++) {
        expect(store.get(id(n))?.lastHeartbeat).toBe(registry.get(id(n)).lastHeartbeat);
      }
    });

    it("stores the same last beat time it acknowledges, even when the wall clock moves while it handles the beat", async () => {
      /** A wall clock that moves 1 ms at every reading, as a busy server's does between two readings. */
      class TickingClock extends FakeClock {
        override now(): number {
          this.stepWall(1);
          return super.now();
        }
      }
      const clock = new TickingClock();
      const store = new MemoryStore([], "/var/lib/agent-registry/agents.json");
      const registry = await Registry.open({ store, clock, heartbeatIntervalMs: INTERVAL, agentTimeoutMs: TIMEOUT });
      opened.push(registry);
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      clock.advance(500);
      const ack = await session.beat(beat);
      await registry.close();
      await store.close();
      expect(store.get(id(1))?.lastHeartbeat).toBe(ack.serverTime);
      expect(registry.get(id(1)).lastHeartbeat).toBe(ack.serverTime);
    });

    it("writes pending beats when it closes", async () => {
      const { clock, store, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      const { session } = stream(registry, id(1));
      clock.advance(500);
      await session.beat(beat);
      await registry.close();
      await store.close();
      expect(store.get(id(1))?.lastHeartbeat).toBe(clock.now());
      expect(clock.pendingTimers).toBe(0);
    });
  });

  describe("list", () => {
    async function fleet(): Promise<Awaited<ReturnType<typeof openRegistry>>> {
      const arranged = await openRegistry();
      const { registry } = arranged;
      await registry.register(registration({ agentId: id(5), hostname: "gpu-b", labels: { gpu: "a100", zone: "eu" } }), PEER);
      await registry.register(registration({ agentId: id(3), hostname: "gpu-a", labels: { gpu: "h100", zone: "eu" } }), PEER);
      await registry.register(registration({ agentId: id(1), hostname: "gpu-c", labels: { gpu: "a100", zone: "us" } }), PEER);
      await registry.register(registration({ agentId: id(2), hostname: "gpu-a", labels: { gpu: "a100", zone: "eu" } }), PEER);
      await registry.register(registration({ agentId: id(4), hostname: "gpu-d", labels: {} }), PEER);
      return arranged;
    }

    const names = (agents: readonly AgentView[]): string[] => agents.map((a) => `${a.hostname}/${a.id.slice(-1)}`);

    it("sorts agents by hostname, then id", async () => {
      const { registry } = await fleet();
      const { agents, nextPageToken } = registry.list(query());
      expect(names(agents)).toEqual(["gpu-a/2", "gpu-a/3", "gpu-b/5", "gpu-c/1", "gpu-d/4"]);
      expect(nextPageToken).toBe("");
    });

    it("re-sorts an agent that registers again under a new hostname", async () => {
      const { registry } = await fleet();
      registry.list(query());
      await registry.register(registration({ agentId: id(4), hostname: "gpu-0" }), PEER);
      expect(names(registry.list(query()).agents)).toEqual(["gpu-0/4", "gpu-a/2", "gpu-a/3", "gpu-b/5", "gpu-c/1"]);
    });

    it("filters by status", async () => {
      const { registry } = await fleet();
      await stream(registry, id(3)).session.beat({ leaving: true });
      expect(names(registry.list(query({ status: "offline" })).agents)).toEqual(["gpu-a/3"]);
      expect(names(registry.list(query({ status: "online" })).agents)).toEqual(["gpu-a/2", "gpu-b/5", "gpu-c/1", "gpu-d/4"]);
    });

    it("filters by a label selector, every pair matching", async () => {
      const { registry } = await fleet();
      expect(names(registry.list(query({ labels: parseLabelSelector("gpu=a100") })).agents)).toEqual([
        "gpu-a/2",
        "gpu-b/5",
        "gpu-c/1",
      ]);
      expect(names(registry.list(query({ labels: parseLabelSelector("gpu=a100,zone=eu") })).agents)).toEqual([
        "gpu-a/2",
        "gpu-b/5",
      ]);
      expect(registry.list(query({ labels: parseLabelSelector("gpu=b200") })).agents).toEqual([]);
    });

    it("shows live status and missed beats in a listing", async () => {
      const { clock, registry } = await fleet();
      clock.advance(TIMEOUT + 1);
      await settle();
      const { agents } = registry.list(query());
      expect(agents.every((a) => a.status === "offline" && a.missedHeartbeats === 2)).toBe(true);
    });

    it("returns every agent exactly once across pages of 2", async () => {
      const { registry } = await fleet();
      const seen: string[] = [];
      let after: ListQuery["after"];
      let pages = 0;
      do {
        const page = registry.list(query({ pageSize: 2, after }));
        expect(page.agents.length).toBeLessThanOrEqual(2);
        seen.push(...names(page.agents));
        after = parsePageToken(page.nextPageToken);
        pages += 1;
      } while (after !== undefined);
      expect(pages).toBe(3);
      expect(seen).toEqual(["gpu-a/2", "gpu-a/3", "gpu-b/5", "gpu-c/1", "gpu-d/4"]);
    });

    it("neither repeats nor skips an agent when agents come and go between pages", async () => {
      const { registry } = await fleet();
      const first = registry.list(query({ pageSize: 2 }));
      expect(names(first.agents)).toEqual(["gpu-a/2", "gpu-a/3"]);

      // The agent the token points at leaves; one joins before the cursor, one after it.
      await registry.deregister(id(3));
      await registry.register(registration({ agentId: id(6), hostname: "gpu-0" }), PEER);
      await registry.register(registration({ agentId: id(7), hostname: "gpu-bb" }), PEER);

      const rest: string[] = [];
      let after = parsePageToken(first.nextPageToken);
      while (after !== undefined) {
        const page = registry.list(query({ pageSize: 2, after }));
        rest.push(...names(page.agents));
        after = parsePageToken(page.nextPageToken);
      }
      expect(rest).toEqual(["gpu-b/5", "gpu-bb/7", "gpu-c/1", "gpu-d/4"]);
    });

    it("pages through a filtered listing", async () => {
      const { registry } = await fleet();
      const labels = parseLabelSelector("gpu=a100");
      const first = registry.list(query({ labels, pageSize: 2 }));
      const second = registry.list(query({ labels, pageSize: 2, after: parsePageToken(first.nextPageToken) }));
      expect([...names(first.agents), ...names(second.agents)]).toEqual(["gpu-a/2", "gpu-b/5", "gpu-c/1"]);
      expect(second.nextPageToken).toBe("");
    });
  });

  describe("with another writer on the same store", () => {
    /** A change another registry (a replica) commits to the same store. */
    const byTheOther = (overrides: Partial<AgentRecord> = {}): AgentRecord => ({
      id: id(1),
      hostname: "gpu-other",
      ipAddress: "10.0.0.9",
      port: 11434,
      ollamaVersion: "0.5.7",
      status: "online",
      lastHeartbeat: FAKE_EPOCH,
      registeredAt: FAKE_EPOCH - 86_400_000,
      labels: {},
      draining: false,
      streamConnected: false,
      livenessHeld: false,
      ...overrides,
    });

    it("shows the other writer's changes to readers and watchers, with their commit's revision", async () => {
      const { store, registry } = await openRegistry();
      const watcher = registry.watch({ status: undefined, labels: [] });

      const { revision } = await store.commit([{ put: byTheOther() }]);
      await store.commit([{ put: byTheOther({ status: "offline" }) }]);

      expect(registry.get(id(1))).toMatchObject({ hostname: "gpu-other", status: "offline" });
      const iterator = watcher[Symbol.asyncIterator]();
      expect((await iterator.next()).value).toMatchObject({ type: "added", revision });
      expect((await iterator.next()).value).toMatchObject({ type: "statusChanged", revision: revision + 1 });
    });

    it("decides a Register that lost a race to the other writer again, on the winner's record", async () => {
      const { store, registry } = await openRegistry();
      store.holdWrites();
      const theirs = store.commit([{ put: byTheOther(), expectedRevision: 0 }]);
      const ours = registry.register(registration({ agentId: id(1), hostname: "gpu-ours" }), PEER);
      store.releaseWrites();
      await theirs;

      const { agent } = await ours;

      // Ours came second: it updates the agent the other writer created, keeping when it registered.
      expect(agent).toMatchObject({ id: id(1), hostname: "gpu-ours", registeredAt: FAKE_EPOCH - 86_400_000 });
      expect(store.get(id(1))).toMatchObject({ hostname: "gpu-ours", registeredAt: FAKE_EPOCH - 86_400_000 });
    });

    it("answers aborted, naming the agent, when other writers keep winning", async () => {
      /** A store on which some other writer always changed the agent first. */
      class AlwaysLosing extends MemoryStore {
        override commit(): Promise<never> {
          return Promise.reject(new StoreConflict(id(1), 0, 7));
        }
      }
      const racing = await Registry.open({ store: new AlwaysLosing(), clock: new FakeClock(), heartbeatIntervalMs: INTERVAL, agentTimeoutMs: TIMEOUT });
      opened.push(racing);

      const error = await rejectionOf(racing.register(registration({ agentId: id(1) }), PEER));

      expect(error.kind).toBe("aborted");
      expect(error.message).toContain(id(1));
      expect(error.message).toMatch(/lost 5 times in a row to concurrent changes/);
    });
  });

  describe("close", () => {
    it("leaves no timer behind", async () => {
      const { clock, registry } = await openRegistry();
      await registry.register(registration({ agentId: id(1) }), PEER);
      await stream(registry, id(1)).session.beat(beat);
      expect(clock.pendingTimers).toBeGreaterThan(0);
      await registry.close();
      expect(clock.pendingTimers).toBe(0);
    });
  });
});
