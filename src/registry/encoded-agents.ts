// Each agent's record as a transport encoded it, kept beside the agent table so a read re-encodes only the
// agents that changed since the last read. An entry is dropped when the table applies a change of its agent
// (the only place records change), and is good only for the very record it was made from; a record the
// table no longer holds (a read that yields between slices saw it go) is encoded, not kept. Not a cache of
// the liveness facts (last beat, missed beats): those move without a commit, so a reader that keeps an
// encoding made with them in an entry checks them at each read (server/list-encodings.ts does).

import type { AgentId } from "./agent-id.js";
import type { AgentRecord } from "./agent.js";
import type { AgentTable } from "./agent-table.js";

export class EncodedAgents<E> {
  private readonly entries = new Map<AgentId, { readonly record: AgentRecord; readonly encoded: E }>();

  constructor(
    private readonly table: AgentTable,
    /** Encodes what a record holds; called once per record an agent has while it is read. */
    private readonly encode: (record: AgentRecord) => E,
  ) {
    table.onApply(({ before, after }) => {
      const id = (after ?? before)?.id;
      if (id !== undefined) this.entries.delete(id);
    });
  }

  /** The encoding of `record`, kept while the table holds that very record. */
  of(record: AgentRecord): E {
    const entry = this.entries.get(record.id);
    if (entry !== undefined && entry.record === record) return entry.encoded;
    const encoded = this.encode(record);
    if (this.table.get(record.id)?.record === record) this.entries.set(record.id, { record, encoded });
    return encoded;
  }

  /** Agents with an encoding kept. */
  get size(): number {
    return this.entries.size;
  }
}
