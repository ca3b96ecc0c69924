// An in-memory Store: a real implementation of the port (a Map, commits applied in order, failed changes
// retried with the next commit), with knobs tests need: fail the next commits, hold commits like a slow disk.

import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import { type Store, type StoreChange, StoreError } from "../../src/registry/store.js";

export class MemoryStore implements Store {
  readonly location: string;
  private readonly data = new Map<AgentId, AgentRecord>();
  /** Changes of failed commits, retried with the next one (the port's contract). */
  private unwritten: StoreChange[] = [];
  private failuresLeft = 0;
  private held: { promise: Promise<void>; release: () => void } | undefined;
  private closed = false;

  /** Successful (durable) commits. */
  commits = 0;
  /** Commits that were attempted and rejected. */
  failedCommits = 0;

  constructor(records: readonly AgentRecord[] = [], location = "memory://agents") {
    this.location = location;
    for (const record of records) this.data.set(record.id, record);
  }

  load(): Promise<AgentRecord[]> {
    return Promise.resolve([...this.data.values()]);
  }

  async commit(changes: readonly StoreChange[]): Promise<void> {
    // Never durable within the caller's synchronous turn, so a caller that does not await is caught.
    await (this.held?.promise ?? Promise.resolve());
    if (this.closed) throw new StoreError(`${this.location}: the store is closed`);
    const batch = [...this.unwritten, ...changes];
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      this.failedCommits += 1;
      this.unwritten = batch;
      throw new StoreError(`${this.location}: no space left on device (simulated)`);
    }
    this.unwritten = [];
    for (const change of batch) {
      if ("put" in change) this.data.set(change.put.id, change.put);
      else this.data.delete(change.delete);
    }
    this.commits += 1;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** The next `count` commits reject with a StoreError naming the location. */
  failNextCommits(count = 1): void {
    this.failuresLeft = count;
  }

  /** Commits wait (like a slow disk) until `releaseCommits`. */
  holdCommits(): void {
    if (this.held !== undefined) return;
    let release = (): void => {};
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.held = { promise, release };
  }

  releaseCommits(): void {
    this.held?.release();
    this.held = undefined;
  }

  /** What is durable for `id`. */
  get(id: string): AgentRecord | undefined {
    return this.data.get(id as AgentId);
  }

  get size(): number {
    return this.data.size;
  }
}
