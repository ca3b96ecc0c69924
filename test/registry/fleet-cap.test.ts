// The cap on the fleet (src/registry/fleet-cap.ts) through the Registry: a full registry refuses new ids
// with nothing written, still takes its known ids back, and cannot be overshot by Registers in flight.

import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import { parseRegistration } from "../../src/registry/registration.js";
import { RegistryError } from "../../src/registry/registry-error.js";
import { Registry } from "../../src/registry/registry.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";
import { settle } from "../support/settle.js";

const id = (n: number): AgentId => `3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c3${n}` as AgentId;
const SETTING = "--max-agents (REGISTRY_MAX_AGENTS)";

const opened: Registry[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function openFull(maxAgents: number, held: number): Promise<{ store: MemoryStore; registry: Registry }> {
  const store = new MemoryStore();
  const registry = await Registry.open({
    store,
    clock: new FakeClock(),
    heartbeatIntervalMs: 30_000,
    agentTimeoutMs: 60_000,
    fleetCap: { maxAgents, setting: SETTING },
  });
  opened.push(registry);
  for (let n = 0; n < held; n++) await registry.register(registration(n), undefined);
  return { store, registry };
}

function registration(n: number, hostname = `gpu-${n}`): ReturnType<typeof parseRegistration> {
  return parseRegistration({ agentId: id(n), hostname, ipAddress: "10.0.0.7", port: 0, ollamaVersion: "0.5.7", labels: {} });
}

async function rejectionOf(promise: Promise<unknown>): Promise<RegistryError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (outcome instanceof RegistryError) return outcome;
  throw new Error(`expected a RegistryError, got ${String(outcome)}`);
}

describe("a registry at its cap", () => {
  it("refuses a new id with RESOURCE_EXHAUSTED naming the cap and the setting, and writes nothing", async () => {
    const { store, registry } = await openFull(3, 3);
    const writes = store.writes;

    const error = await rejectionOf(registry.register(registration(3), undefined));

    expect(error.kind).toBe("resourceExhausted");
    expect(error.message).toBe(
      `the registry is full: it holds 3 agents, the most ${SETTING} allows; deregister nodes that are gone or raise ${SETTING}`,
    );
    expect(store.writes).toBe(writes);
    expect(store.get(id(3))).toBeUndefined();
    expect(() => registry.get(id(3))).toThrow(/no agent with id/);
    expect(registry.size).toBe(3);
  });

  it("still re-registers the ids it holds", async () => {
    const { store, registry } = await openFull(3, 3);

    const { agent } = await registry.register(registration(1, "gpu-1-renamed"), undefined);

    expect(agent.hostname).toBe("gpu-1-renamed");
    expect(store.get(id(1))?.hostname).toBe("gpu-1-renamed");
  });

  it("takes a new id once a place is freed by a Deregister", async () => {
    const { registry } = await openFull(3, 3);
    await registry.deregister(id(0));

    expect((await registry.register(registration(3), undefined)).agent.id).toBe(id(3));
    expect((await rejectionOf(registry.register(registration(4), undefined))).kind).toBe("resourceExhausted");
  });
});

describe("Registers of new ids in flight", () => {
  it("count against the cap before they are written, so concurrent ones cannot overshoot it", async () => {
    const { store, registry } = await openFull(3, 1);
    store.holdWrites();

    const outcomes = [2, 3, 4].map((n) =>
      registry.register(registration(n), undefined).then(
        () => "registered",
        (error: unknown) => (error instanceof RegistryError ? error.kind : String(error)),
      ),
    );
    await settle();
    store.releaseWrites();

    expect(await Promise.all(outcomes)).toEqual(["registered", "registered", "resourceExhausted"]);
    expect(registry.size).toBe(3);
    expect(store.size).toBe(3);
  });

  it("give their place back when the write fails", async () => {
    const { store, registry } = await openFull(2, 1);
    store.failNextWrites(1);

    expect((await rejectionOf(registry.register(registration(1), undefined))).kind).toBe("unavailable");
    expect((await registry.register(registration(2), undefined)).agent.id).toBe(id(2));
  });
});
