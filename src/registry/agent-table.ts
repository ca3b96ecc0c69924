// The agents as the store has committed them: a map by id, a view sorted by hostname then id for listing
// and paging, and the store revision they are at. Changed only by apply(), with commits the store fed it
// (this process's own, or a shared store's watch), so it never runs ahead of the store and a failed write
// leaves nothing to undo. Each applied change goes to the listeners (the change feed, the liveness
// authority) in the same step, so watchers hear of a change only once it is durable.

import type { AgentId } from "./agent-id.js";
import type { AgentRecord } from "./agent.js";
import { type AgentFilter, type ListQuery, type Page, compareAgents, matches, pageOf, sortedPosition } from "./agent-query.js";
import type { Commit, StoreSnapshot, StoredAgent } from "./store.js";

/** One applied change of one agent: `before` undefined for a new agent, `after` for a removed one. */
export interface AppliedChange {
  readonly before: AgentRecord | undefined;
  readonly after: AgentRecord | undefined;
  readonly revision: number;
}

export type ApplyListener = (change: AppliedChange) => void;

export class AgentTable {
  private readonly entries = new Map<AgentId, StoredAgent>();
  /** Records sorted by compareAgents, kept in order as agents come, go and change hostname. */
  private sorted: AgentRecord[] | undefined;
  private at: number;
  private readonly listeners: ApplyListener[] = [];

  constructor(snapshot: StoreSnapshot) {
    for (const agent of snapshot.agents) this.entries.set(agent.record.id, agent);
    this.at = snapshot.revision;
  }

  /** The store revision of the last commit applied. */
  get revision(): number {
    return this.at;
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: AgentId): StoredAgent | undefined {
    return this.entries.get(id);
  }

  values(): IterableIterator<StoredAgent> {
    return this.entries.values();
  }

  /** Tells `listener` about every change applied from now on. */
  onApply(listener: ApplyListener): void {
    this.listeners.push(listener);
  }

  /** Applies a commit the store made; commits at or below the table's revision are already in it. */
  apply(commit: Commit): void {
    if (commit.revision <= this.at) return;
    this.at = commit.revision;
    for (const change of commit.changes) {
      const before = this.entries.get(change.id)?.record;
      const after = change.record;
      if (after === undefined) this.entries.delete(change.id);
      else this.entries.set(change.id, { record: after, revision: commit.revision });
      if (before === undefined || after === undefined || before.hostname !== after.hostname) this.resort(before, after);
      for (const listener of this.listeners) listener({ before, after, revision: commit.revision });
    }
  }

  /** Records matching `filter`, sorted by hostname then id. */
  sortedMatching(filter: AgentFilter): AgentRecord[] {
    const matching: AgentRecord[] = [];
    for (const stale of this.sortedRecords()) {
      const record = this.current(stale);
      if (matches(record, filter)) matching.push(record);
    }
    return matching;
  }

  /** One page of the records matching `query` (see pageOf), read only as far as the page reaches. */
  page(query: ListQuery): Page {
    return pageOf(this.sortedRecords(), query, (stale) => this.current(stale));
  }

  /**
   * The records sorted by compareAgents, of their time: the order changes only with the set of agents or a
   * hostname (resort()), so the current record of each is read from the entries (current()).
   */
  private sortedRecords(): readonly AgentRecord[] {
    this.sorted ??= [...this.entries.values()].map((entry) => entry.record).sort(compareAgents);
    return this.sorted;
  }

  /**
   * Moves an agent that came, went or changed hostname to its place in the sorted records: a binary search
   * and a splice, not a sort of the fleet (agents register while balancers read the whole list).
   */
  private resort(before: AgentRecord | undefined, after: AgentRecord | undefined): void {
    const sorted = this.sorted;
    if (sorted === undefined) return;
    if (before !== undefined) {
      const at = sortedPosition(sorted, before);
      if (sorted[at]?.id !== before.id) {
        this.sorted = undefined; // not where it should be: sort afresh at the next read
        return;
      }
      sorted.splice(at, 1);
    }
    if (after !== undefined) sorted.splice(sortedPosition(sorted, after), 0, after);
  }

  private current(stale: AgentRecord): AgentRecord {
    return (this.entries.get(stale.id) as StoredAgent).record;
  }
}
