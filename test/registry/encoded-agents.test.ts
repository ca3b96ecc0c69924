import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import { parseRegistration } from "../../src/registry/registration.js";
import type { EncodedAgents } from "../../src/registry/encoded-agents.js";
import { Registry } from "../../src/registry/registry.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";

const A = "11111111-1111-4111-8111-111111111111" as AgentId;
const B = "22222222-2222-4222-8222-222222222222" as AgentId;
const ALL = { status: undefined, labels: [], pageSize: 0, after: undefined } as const;

const opened: Registry[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function fleet(): Promise<{ registry: Registry; clock: FakeClock; encoded: string[] }> {
  const clock = new FakeClock();
  const registry = await Registry.open({ store: new MemoryStore([], "/tmp/agents.json"), clock, heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000 });
  opened.push(registry);
  for (const [id, hostname] of [[A, "gpu-a"], [B, "gpu-b"]] as const) {
    await registry.register(parseRegistration({ agentId: id, hostname, ipAddress: "10.0.0.7", port: 0, ollamaVersion: "0.5.7", labels: {} }), undefined);
  }
  return { registry, clock, encoded: [] };
}

interface Read<E> {
  readonly encoded: E;
  readonly lastHeartbeat: number;
  readonly missedHeartbeats: number;
}

/** `records` (the whole list, unless given), each as its cached encoding and its liveness facts. */
function read<E>(registry: Registry, cache: EncodedAgents<E>, records = registry.listRecords(ALL).agents): Array<Read<E>> {
  const views: Array<Read<E>> = [];
  registry.forEachEncoded(records, 0, records.length, cache, (encoded, lastHeartbeat, missedHeartbeats) =>
    views.push({ encoded, lastHeartbeat, missedHeartbeats }),
  );
  return views;
}

const encodeHostname = (log: string[]) => (record: AgentRecord): string => {
  log.push(record.id);
  return `${record.hostname}:${Object.values(record.labels).join(",")}`;
};

describe("EncodedAgents", () => {
  it("encodes each agent once, however often it is read, until it changes", async () => {
    const { registry, encoded } = await fleet();
    const cache = registry.encodedAgents(encodeHostname(encoded));
    read(registry, cache);
    read(registry, cache);
    expect(encoded).toEqual([A, B]);

    await registry.register(parseRegistration({ agentId: A, hostname: "gpu-a", ipAddress: "10.0.0.7", port: 0, ollamaVersion: "0.5.7", labels: { zone: "eu" } }), undefined);
    const page = read(registry, cache);
    expect(encoded).toEqual([A, B, A]);
    expect(page.map((agent) => agent.encoded)).toEqual(["gpu-a:eu", "gpu-b:"]);
  });

  it("gives each read the liveness facts of its time, which no commit changes", async () => {
    const { registry, clock, encoded } = await fleet();
    const cache = registry.encodedAgents(encodeHostname(encoded));
    expect(read(registry, cache).map((agent) => agent.missedHeartbeats)).toEqual([0, 0]);
    clock.advance(31_000);
    const later = read(registry, cache);
    expect(later.map((agent) => agent.missedHeartbeats)).toEqual([1, 1]);
    expect(later.map((agent) => agent.lastHeartbeat)).toEqual([registry.get(A).lastHeartbeat, registry.get(B).lastHeartbeat]);
    expect(encoded).toEqual([A, B]);
  });

  it("keeps nothing of an agent that was deregistered", async () => {
    const { registry, encoded } = await fleet();
    const cache = registry.encodedAgents(encodeHostname(encoded));
    read(registry, cache);
    await registry.deregister(A, { admin: true });
    expect(cache.size).toBe(1);
    expect(read(registry, cache).map((agent) => agent.encoded)).toEqual(["gpu-b:"]);
  });

  it("keeps nothing of an agent that went while a read of it was under way, and still gives the read its encoding", async () => {
    const { registry, encoded } = await fleet();
    const cache = registry.encodedAgents(encodeHostname(encoded));
    const page = registry.listRecords(ALL).agents;
    await registry.deregister(A, { admin: true });
    expect(read(registry, cache, page).map((agent) => agent.encoded)).toEqual(["gpu-a:", "gpu-b:"]);
    expect(cache.size).toBe(1);
  });
});
