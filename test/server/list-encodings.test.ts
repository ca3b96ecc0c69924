import { create, fromBinary, fromJsonString, toBinary, toJson } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { ListAgentsResponseSchema } from "../../gen/registry/v1/registry_pb.js";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { ListQuery } from "../../src/registry/agent-query.js";
import { parseRegistration } from "../../src/registry/registration.js";
import { Registry } from "../../src/registry/registry.js";
import { ListEncodings } from "../../src/server/list-encodings.js";
import { agentToWire } from "../../src/server/wire.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";

const ALL: ListQuery = { status: undefined, labels: [], pageSize: 0, after: undefined };
const opened: Registry[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function fleet(clock: FakeClock, size = 3, stepMs = 1234): Promise<Registry> {
  const registry = await Registry.open({ store: new MemoryStore([], "/tmp/agents.json"), clock, heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000 });
  opened.push(registry);
  for (let n = 1; n <= size; n++) {
    const id = `${String(n).padStart(8, "0")}-1111-4111-8111-111111111111` as AgentId;
    await registry.register(
      parseRegistration({ agentId: id, hostname: `gpu-${String(n).padStart(4, "0")}`, ipAddress: "10.0.0.7", port: 11434, ollamaVersion: "0.5.7", labels: { zone: "eu" } }),
      undefined,
    );
    clock.advance(stepMs); // registered (and last beat) at times with and without a fraction of a second
  }
  return registry;
}

/** What connect-node and grpc-js would send for the same page: the plain message. */
function plain(registry: Registry, query: ListQuery): unknown {
  const page = registry.list(query);
  return toJson(ListAgentsResponseSchema, create(ListAgentsResponseSchema, { agents: page.agents.map(agentToWire), nextPageToken: page.nextPageToken }));
}

describe("ListEncodings", () => {
  it("gives the plain message's agents in binary and in JSON, missed beats and whole-second times included", async () => {
    const clock = new FakeClock(Date.parse("2026-01-01T00:00:00.000Z"));
    const registry = await fleet(clock);
    const lists = new ListEncodings(registry);
    clock.advance(61_000 - 3 * 1234); // the first agent has missed two beats, the others one
    for (const query of [ALL, { ...ALL, pageSize: 2 }]) {
      const binary = fromBinary(ListAgentsResponseSchema, toBinary(ListAgentsResponseSchema, await lists.binaryPage(query)));
      const json = fromJsonString(ListAgentsResponseSchema, (await lists.jsonPage(query)).toString("utf8"));
      expect(toJson(ListAgentsResponseSchema, binary)).toEqual(plain(registry, query));
      expect(toJson(ListAgentsResponseSchema, json)).toEqual(plain(registry, query));
    }
    expect(registry.list(ALL).agents.map((agent) => agent.missedHeartbeats)).toEqual([2, 1, 1]);
  });

  it("gives the missed beats of the read's time, not of the read before (each agent's last answer is reused only while they are the same)", async () => {
    const clock = new FakeClock();
    const registry = await fleet(clock);
    const lists = new ListEncodings(registry);
    await lists.jsonPage(ALL);
    await lists.binaryPage(ALL);
    clock.advance(31_000);
    const binary = fromBinary(ListAgentsResponseSchema, toBinary(ListAgentsResponseSchema, await lists.binaryPage(ALL)));
    const json = fromJsonString(ListAgentsResponseSchema, (await lists.jsonPage(ALL)).toString("utf8"));
    expect(binary.agents.map((agent) => agent.missedHeartbeats)).toEqual([1, 1, 1]);
    expect(toJson(ListAgentsResponseSchema, json)).toEqual(plain(registry, ALL));
  });

  it("builds a page of more agents than a slice over several turns of the event loop, letting other work run between them", async () => {
    const clock = new FakeClock();
    const registry = await fleet(clock, 1200, 1); // all ONLINE: none expires while the pages are built
    const lists = new ListEncodings(registry);
    let turns = 0;
    const counting = setInterval(() => turns++, 0);
    const [json, binary] = await Promise.all([lists.jsonPage(ALL), lists.binaryPage(ALL)]);
    clearInterval(counting);
    expect(turns).toBeGreaterThan(0);
    expect(toJson(ListAgentsResponseSchema, fromJsonString(ListAgentsResponseSchema, json.toString("utf8")))).toEqual(plain(registry, ALL));
    expect(toJson(ListAgentsResponseSchema, fromBinary(ListAgentsResponseSchema, toBinary(ListAgentsResponseSchema, binary)))).toEqual(plain(registry, ALL));
  });
});
