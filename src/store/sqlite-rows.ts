// The row numbers of registry.db's agents (seq, handed out by the store, in order of arrival) and the sweep
// that takes waiting beat times in that order, a bounded number at a time, from where the last sweep
// stopped: rows side by side share pages, so a write of beat times touches a few pages, however large the
// fleet. The sweep walks a list kept in seq order; it never sorts.

import type { AgentId } from "../registry/agent-id.js";

export class SqliteRows {
  private readonly seqs = new Map<AgentId, number>();
  /** Every row in seq order; entries of removed rows linger until there are as many as live ones. */
  private order: Array<{ readonly id: AgentId; readonly seq: number }> = [];
  private stale = 0;
  private cursor = 0;
  private next = 1;

  seqOf(id: AgentId): number | undefined {
    return this.seqs.get(id);
  }

  /** The seq the `offset`-th new row of a write will get (kept only by add()). */
  nextSeq(offset: number): number {
    return this.next + offset;
  }

  /** A row with this seq exists (loaded in seq order, or written with nextSeq()). */
  add(id: AgentId, seq: number): void {
    this.seqs.set(id, seq);
    this.order.push({ id, seq });
    this.next = Math.max(this.next, seq + 1);
  }

  remove(id: AgentId): void {
    if (!this.seqs.delete(id)) return;
    if (++this.stale > this.seqs.size) this.compact();
  }

  clear(): void {
    this.seqs.clear();
    this.order = [];
    this.stale = 0;
    this.cursor = 0;
    this.next = 1;
  }

  /** Up to `limit` of the `waiting` beat times, in seq order from where the last sweep stopped. */
  sweep(waiting: ReadonlyMap<AgentId, number>, limit: number): Array<[AgentId, number]> {
    const taken: Array<[AgentId, number]> = [];
    const rows = this.order.length;
    let step = 0;
    for (; step < rows && taken.length < limit; step++) {
      const { id, seq } = this.order[(this.cursor + step) % rows] as { id: AgentId; seq: number };
      if (this.seqs.get(id) !== seq) continue;
      const at = waiting.get(id);
      if (at !== undefined) taken.push([id, at]);
    }
    this.cursor = rows === 0 ? 0 : (this.cursor + step) % rows;
    return taken;
  }

  private compact(): void {
    this.order = this.order.filter(({ id, seq }) => this.seqs.get(id) === seq);
    this.stale = 0;
    this.cursor = 0;
  }
}
