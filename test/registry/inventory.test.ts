// A node's inventory in the registry: the limits a reported inventory must keep, what a beat with an
// inventory changes (and which changes watchers hear of), the model, loaded-model and ready filters, and the
// reachability verdict.

import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import { type Inventory, MAX_GPUS, MAX_MODELS, parseInventory } from "../../src/registry/inventory.js";
import { parseRegistration } from "../../src/registry/registration.js";
import { Registry } from "../../src/registry/registry.js";
import type { WatchEvent } from "../../src/registry/watcher.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";
import { thrownBy } from "../support/registry-errors.js";
import { settle } from "../support/settle.js";
import { anInventory } from "../store/agent-records.js";

const opened: Registry[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function openRegistry(): Promise<{ registry: Registry; store: MemoryStore }> {
  const store = new MemoryStore([], "/var/lib/agent-registry/agents.json");
  const registry = await Registry.open({ store, clock: new FakeClock(), heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000 });
  opened.push(registry);
  return { registry, store };
}

async function registered(registry: Registry, hostname: string, inventory?: Inventory): Promise<AgentId> {
  const input = { agentId: "", hostname, ipAddress: "10.0.0.7", port: 0, ollamaVersion: "0.5.7", labels: {}, inventory };
  return (await registry.register(parseRegistration(input), undefined)).agent.id;
}

const withModels = (...models: Array<[string, boolean]>): Inventory => ({
  gpus: [],
  models: models.map(([name, loaded]) => ({ name, digest: "sha256:0", sizeBytes: 1, loaded, vramBytes: loaded ? 1 : 0 })),
});

function refusal(inventory: Inventory): { kind: string; message: string } {
  const error = thrownBy(() => parseInventory(inventory));
  return { kind: error.kind, message: error.message };
}

describe("an inventory's limits", () => {
  const gpu = anInventory().gpus[0] as Inventory["gpus"][number];
  const model = anInventory().models[0] as Inventory["models"][number];

  it("takes GPUs whose board reports [N/A] figures (absent) and models with no expiry", () => {
    const inventory = anInventory();
    expect(parseInventory(inventory)).toEqual(inventory);
  });

  it(`refuses more than ${MAX_GPUS} GPUs or ${MAX_MODELS} models`, () => {
    expect(refusal({ gpus: Array.from({ length: 65 }, () => gpu), models: [] })).toEqual({
      kind: "invalidArgument",
      message: "inventory.gpus: at most 64 GPUs per node, got 65",
    });
    expect(refusal({ gpus: [], models: Array.from({ length: 1025 }, () => model) }).message).toBe(
      "inventory.models: at most 1024 models per node, got 1025",
    );
  });

  it("names the field and its index of a negative, absurd or out-of-range figure", () => {
    const gpus = (change: object): Inventory => ({ gpus: [gpu, gpu, gpu, { ...gpu, ...change }], models: [] });
    expect(refusal(gpus({ utilizationPercent: 101 })).message).toBe("inventory.gpus[3].utilization_percent: must be a whole number from 0 to 100, got 101");
    expect(refusal(gpus({ temperatureCelsius: -51 })).message).toMatch(/^inventory\.gpus\[3\]\.temperature_celsius: .* -50 to 150, got -51$/);
    expect(refusal(gpus({ memoryTotalBytes: 2 ** 51 })).message).toMatch(/^inventory\.gpus\[3\]\.memory_total_bytes: /);
    expect(refusal({ gpus: [], models: [model, { ...model, sizeBytes: -1 }] }).message).toMatch(/^inventory\.models\[1\]\.size_bytes: .*got -1$/);
  });

  it("refuses names longer than 256 bytes (counted in UTF-8) and a model without a name", () => {
    expect(refusal({ gpus: [{ ...gpu, name: "é".repeat(129) }], models: [] }).message).toBe("inventory.gpus[0].name: must be at most 256 bytes, got 258");
    expect(refusal({ gpus: [], models: [{ ...model, name: "" }] }).message).toBe("inventory.models[0].name: is required");
  });
});

describe("a node's inventory in the registry", () => {
  it("shows what Register carried, with when it was taken", async () => {
    const { registry } = await openRegistry();
    const id = await registered(registry, "gpu-01", anInventory());

    expect(registry.get(id)).toMatchObject({ inventory: anInventory(), inventoryUpdatedAt: expect.any(Number) as number });
  });

  it("makes a beat whose inventory changed what a user routes by a durable, UPDATED change", async () => {
    const { registry, store } = await openRegistry();
    const id = await registered(registry, "gpu-01", withModels(["llama3.1:8b", false]));
    const session = registry.openHeartbeat(id, () => undefined);
    await session.beat({ leaving: false });
    const watcher = registry.watch({ status: undefined, labels: [] });
    const events = watcher[Symbol.asyncIterator]();
    await events.next(); // the snapshot

    await session.beat({ leaving: false, inventory: withModels(["llama3.1:8b", true]) });

    expect(((await events.next()).value as WatchEvent).type).toBe("updated");
    expect(store.get(id)?.inventory?.models[0]?.loaded).toBe(true);
    watcher.close();
  });

  it("saves a change of memory used or utilisation alone without telling watchers", async () => {
    const { registry, store } = await openRegistry();
    const id = await registered(registry, "gpu-01", anInventory());
    const session = registry.openHeartbeat(id, () => undefined);
    await session.beat({ leaving: false });
    const watcher = registry.watch({ status: undefined, labels: [] });
    const seen: WatchEvent[] = [];
    void (async () => {
      for await (const event of watcher) seen.push(event);
    })();
    const busier = anInventory();
    const gpus = busier.gpus.map((gpu) => ({ ...gpu, utilizationPercent: 99, memoryUsedBytes: 2 ** 30 }));

    await session.beat({ leaving: false, inventory: { ...busier, gpus } });
    await session.beat({ leaving: false, draining: true });
    await settle();

    expect(store.get(id)?.inventory?.gpus[0]?.utilizationPercent).toBe(99);
    expect(seen.filter((event) => !event.snapshot).map((event) => [event.type, event.agent.draining])).toEqual([["updated", true]]);
    watcher.close();
  });

  it("keeps the inventory a beat without one leaves unchanged", async () => {
    const { registry } = await openRegistry();
    const id = await registered(registry, "gpu-01", anInventory());
    await registry.openHeartbeat(id, () => undefined).beat({ leaving: false, draining: true });

    expect(registry.get(id).inventory).toEqual(anInventory());
  });
});

describe("the inventory filters", () => {
  const hostnames = (registry: Registry, filter: object): string[] =>
    registry.list({ status: undefined, labels: [], pageSize: 0, after: undefined, ...filter }).agents.map((agent) => agent.hostname);

  it("lists nodes that have a model installed, or loaded now", async () => {
    const { registry } = await openRegistry();
    await registered(registry, "gpu-01", withModels(["llama3.1:8b", true]));
    await registered(registry, "gpu-02", withModels(["llama3.1:8b", false], ["qwen2.5:72b", true]));
    await registered(registry, "gpu-03");

    expect(hostnames(registry, { model: "llama3.1:8b" })).toEqual(["gpu-01", "gpu-02"]);
    expect(hostnames(registry, { loadedModel: "llama3.1:8b" })).toEqual(["gpu-01"]);
    expect(hostnames(registry, { model: "mistral:7b" })).toEqual([]);
  });

  it("lists as ready only nodes that are online, not draining, not held and reachable", async () => {
    const { registry } = await openRegistry();
    await registered(registry, "gpu-01");
    const draining = await registered(registry, "gpu-02");
    const leaving = await registered(registry, "gpu-03");
    const unreachable = await registered(registry, "gpu-04");
    await registry.openHeartbeat(draining, () => undefined).beat({ leaving: false, draining: true });
    await registry.openHeartbeat(leaving, () => undefined).beat({ leaving: true });
    await registry.setReachability(unreachable, "10.0.0.7:11434: connect ECONNREFUSED");

    expect(hostnames(registry, { ready: true })).toEqual(["gpu-01"]);
    expect(registry.get(unreachable).unreachable).toBe("10.0.0.7:11434: connect ECONNREFUSED");
    await registry.setReachability(unreachable, undefined);
    expect(hostnames(registry, { ready: true })).toEqual(["gpu-01", "gpu-04"]);
  });

  it("removes a node from a ready watch when it stops being reachable", async () => {
    const { registry } = await openRegistry();
    const id = await registered(registry, "gpu-01");
    const watcher = registry.watch({ status: undefined, labels: [], ready: true });
    const events = watcher[Symbol.asyncIterator]();
    expect(((await events.next()).value as WatchEvent).type).toBe("added");

    await registry.setReachability(id, "10.0.0.7:11434: timed out after 2 s");

    expect(((await events.next()).value as WatchEvent).type).toBe("removed");
    watcher.close();
  });
});
