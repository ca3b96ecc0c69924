import { describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import { compareAgents } from "../../src/registry/agent-query.js";
import { AgentTable } from "../../src/registry/agent-table.js";
import { record } from "../support/records.js";

const EVERY_AGENT = { status: undefined, labels: [], pageSize: 0, after: undefined } as const;

/** A small deterministic generator (the same steps every run). */
function steps(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe("AgentTable", () => {
  it("lists in hostname-then-id order, with the current records, through agents coming, going and renamed", () => {
    const table = new AgentTable({ agents: [], revision: 0 });
    const live = new Map<string, AgentRecord>();
    const random = steps(7);
    let revision = 0;
    for (let step = 0; step < 600; step++) {
      // A read between changes, so the order is kept up rather than rebuilt.
      if (step % 3 === 0) table.page(EVERY_AGENT);
      const ids = [...live.keys()];
      const roll = random();
      const id = roll < 0.5 || ids.length === 0 ? `id-${step}` : (ids[Math.floor(random() * ids.length)] as string);
      // Few hostnames, so many agents share one and the id decides.
      const hostname = `gpu-${Math.floor(random() * 12)}`;
      let change: { id: AgentId; record: AgentRecord | undefined };
      if (roll < 0.5 || ids.length === 0) change = { id: id as AgentId, record: record(hostname, id) };
      else if (roll < 0.7) change = { id: id as AgentId, record: undefined };
      else if (roll < 0.85) change = { id: id as AgentId, record: { ...(live.get(id) as AgentRecord), hostname } };
      else change = { id: id as AgentId, record: { ...(live.get(id) as AgentRecord), port: step } };
      table.apply({ revision: ++revision, changes: [change] });
      if (change.record === undefined) live.delete(id);
      else live.set(id, change.record);
      expect(table.page(EVERY_AGENT).agents).toEqual([...live.values()].sort(compareAgents));
    }
    expect(live.size).toBeGreaterThan(20);
  });
});
