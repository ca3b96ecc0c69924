import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentView } from "../../src/registry/agent.js";
import { parseRegistration } from "../../src/registry/registration.js";
import { RegistryError } from "../../src/registry/registry-error.js";
import { Registry } from "../../src/registry/registry.js";
import { type WatchEvent, type Watcher, changeType } from "../../src/registry/watcher.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";

const A = "11111111-1111-4111-8111-111111111111" as AgentId;
const B = "22222222-2222-4222-8222-222222222222" as AgentId;

const view = (overrides: Partial<AgentView> = {}): AgentView => ({
  id: A,
  hostname: "gpu-a",
  ipAddress: "10.0.0.1",
  port: 11434,
  ollamaVersion: "0.5.7",
  status: "online",
  lastHeartbeat: 1,
  registeredAt: 1,
  labels: { gpu: "a100" },
  draining: false,
  streamConnected: false,
  livenessHeld: false,
  missedHeartbeats: 0,
  ...overrides,
});

describe("changeType", () => {
  it.each([
    ["a new agent", undefined, view(), "added"],
    ["a removed agent", view(), undefined, "removed"],
    ["a status change", view(), view({ status: "offline" }), "statusChanged"],
    ["a stream opening", view(), view({ streamConnected: true }), "updated"],
    ["draining", view(), view({ draining: true }), "updated"],
    ["a new version", view(), view({ ollamaVersion: "0.6.0" }), "updated"],
    ["new labels", view(), view({ labels: { gpu: "h100" } }), "updated"],
    ["a new address", view(), view({ ipAddress: "10.0.0.2" }), "updated"],
  ])("reports %s", (_, before, after, type) => {
    expect(changeType(before, after)).toBe(type);
  });

  it("reports nothing when only the beat time or missed count moved", () => {
    expect(changeType(view(), view({ lastHeartbeat: 99, missedHeartbeats: 1 }))).toBeUndefined();
  });
});

describe("Registry.watch", () => {
  const opened: Registry[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((registry) => registry.close()));
  });

  async function open(watchQueueLimit = 1024): Promise<{ registry: Registry; clock: FakeClock }> {
    const clock = new FakeClock();
    const registry = await Registry.open({
      store: new MemoryStore([], "memory"),
      clock,
      heartbeatIntervalMs: 30_000,
      agentTimeoutMs: 60_000,
      watchQueueLimit,
    });
    opened.push(registry);
    return { registry, clock };
  }

  const register = (registry: Registry, id: AgentId, hostname: string, labels: Record<string, string> = {}) =>
    registry.register(
      parseRegistration({ agentId: id, hostname, ipAddress: "10.0.0.1", port: 0, ollamaVersion: "", labels }),
      undefined,
    );

  /** Reads what the watcher holds now, without waiting for more. */
  async function drain(watcher: Watcher): Promise<WatchEvent[]> {
    const events: WatchEvent[] = [];
    const iterator = watcher[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([iterator.next(), new Promise<"empty">((resolve) => setImmediate(() => resolve("empty")))]);
      if (next === "empty" || next.done === true) return events;
      events.push(next.value);
    }
  }

  it("reports a timeout as a status change with the agent's new state", async () => {
    const { registry, clock } = await open();
    await register(registry, A, "gpu-a");
    const watcher = registry.watch({ status: undefined, labels: [] });
    clock.advance(60_001);
    const events = await drain(watcher);
    expect(events.map((event) => [event.type, event.snapshot, event.agent.status])).toEqual([
      ["added", true, "online"],
      ["statusChanged", false, "offline"],
    ]);
    expect(events[1]!.revision).toBeGreaterThan(events[0]!.revision);
  });

  it("does not count the snapshot against the queue limit, but cuts off a reader that falls behind", async () => {
    const { registry } = await open(3);
    for (const [n, id] of [A, B].entries()) await register(registry, id, `gpu-${n}`);
    const watcher = registry.watch({ status: undefined, labels: [] });
    for (let n = 0; n < 3; n++) await register(registry, A, `gpu-a-${n}`);
    expect((await drain(watcher)).map((event) => event.type)).toEqual(["added", "added", "updated", "updated", "updated"]);

    // One more change than the pending read (left by drain) and the limit can take.
    for (let n = 0; n < 5; n++) await register(registry, A, `gpu-a-again-${n}`);
    const error = await watcher[Symbol.asyncIterator]().next().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).kind).toBe("resourceExhausted");
  });

  it("never sets the queue limit below the fleet: one change to every agent at once cuts off no reader", async () => {
    const { registry } = await open(3);
    const ids = Array.from({ length: 10 }, (_, n) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}` as AgentId);
    for (const [n, id] of ids.entries()) await register(registry, id, `gpu-${n}`);
    const watcher = registry.watch({ status: undefined, labels: [] });
    for (const [n, id] of ids.entries()) await register(registry, id, `gpu-${n}-renamed`);
    const events = await drain(watcher);
    expect(events.filter((event) => !event.snapshot).map((event) => event.agent.hostname)).toEqual(ids.map((_, n) => `gpu-${n}-renamed`));

    // A reader that falls further behind than the fleet is large is still cut off.
    for (let n = 0; n < 13; n++) await register(registry, A, `gpu-a-${n}`);
    const error = await watcher[Symbol.asyncIterator]().next().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect((error as RegistryError).message).toMatch(/fell more than 11 events behind/);
  });

  it("publishes a change only once the store has made it durable, with that commit's revision", async () => {
    const store = new MemoryStore([], "memory");
    const registry = await Registry.open({ store, clock: new FakeClock(), heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000 });
    opened.push(registry);
    const next = registry.watch({ status: undefined, labels: [] })[Symbol.asyncIterator]().next();
    store.holdWrites();

    const registering = register(registry, A, "gpu-a");
    const early = await Promise.race([next, new Promise<"nothing yet">((resolve) => setImmediate(() => resolve("nothing yet")))]);
    expect(early).toBe("nothing yet");
    store.releaseWrites();
    await registering;

    const { value: added } = await next;
    expect(added).toMatchObject({ type: "added", snapshot: false, agent: { id: A, hostname: "gpu-a" } });
    expect(added?.revision).toBe(store.revision);
  });

  it("publishes nothing of a change that was not written", async () => {
    const store = new MemoryStore([], "memory");
    const registry = await Registry.open({ store, clock: new FakeClock(), heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000 });
    opened.push(registry);
    const watcher = registry.watch({ status: undefined, labels: [] });
    store.failNextWrites(1);

    await expect(register(registry, A, "gpu-a")).rejects.toMatchObject({ kind: "unavailable" });

    expect(await drain(watcher)).toEqual([]);
  });

  it("stops sending to a closed watcher", async () => {
    const { registry } = await open();
    const watcher = registry.watch({ status: undefined, labels: [] });
    watcher.close();
    await register(registry, A, "gpu-a");
    expect(await drain(watcher)).toEqual([]);
  });
});
