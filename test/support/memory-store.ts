// An in-memory Store: the real commit log (revisions, conditional changes, group commit, watch) over a
// "disk" that is a variable, with the knobs tests need: fail the next writes like a full disk, hold writes
// like a slow one. What it holds survives close(), so a test can open a registry on it again (a restart).

import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import type { Commit, Store, StoreChange, StoreObserver, StoreSnapshot, StoredAgent } from "../../src/registry/store.js";
import { CommitLog, type WriteBatch, type WriteOutcome } from "../../src/store/commit-log.js";

export class MemoryStore implements Store {
  readonly location: string;
  /** What a restart would load: the last durable state. */
  private disk: StoreSnapshot;
  private log: CommitLog | undefined;
  private observer: StoreObserver | undefined;
  private failuresLeft = 0;
  private held: { promise: Promise<void>; release: () => void } | undefined;

  /** Writes that succeeded (durable), and writes that failed. */
  writes = 0;
  failedWrites = 0;

  constructor(records: readonly AgentRecord[] = [], location = "memory://agents") {
    this.location = location;
    this.disk = { agents: records.map((record) => ({ record, revision: 1 })), revision: records.length > 0 ? 1 : 0 };
  }

  load(): Promise<StoreSnapshot> {
    this.log = new CommitLog({ write: (batch) => this.write(batch) }, this.disk, { location: this.location, observer: this.observer });
    return Promise.resolve(this.disk);
  }

  commit(changes: readonly StoreChange[]): Promise<Commit> {
    return this.loaded().commit(changes);
  }

  saveBeats(beats: ReadonlyMap<AgentId, number>): void {
    this.loaded().saveBeats(beats);
  }

  watch(fromRevision: number, onCommit: (commit: Commit) => void): () => void {
    return this.loaded().watch(fromRevision, onCommit);
  }

  async close(): Promise<void> {
    await this.log?.close();
  }

  /** Tells `observer` about every write from the next load() on, as a file store's observer is. */
  observe(observer: StoreObserver | undefined): void {
    this.observer = observer;
  }

  /** The next `count` writes fail as a full disk would. */
  failNextWrites(count = 1): void {
    this.failuresLeft = count;
  }

  /** Writes wait (like a slow disk) until `releaseWrites`. */
  holdWrites(): void {
    if (this.held !== undefined) return;
    let release = (): void => {};
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.held = { promise, release };
  }

  releaseWrites(): void {
    this.held?.release();
    this.held = undefined;
  }

  /** What is durable for `id`. */
  get(id: string): AgentRecord | undefined {
    return this.disk.agents.find((agent) => agent.record.id === id)?.record;
  }

  get size(): number {
    return this.disk.agents.length;
  }

  /** The store revision of what is durable. */
  get revision(): number {
    return this.disk.revision;
  }

  private loaded(): CommitLog {
    if (this.log === undefined) throw new Error(`${this.location}: load() first`);
    return this.log;
  }

  private async write(batch: WriteBatch): Promise<WriteOutcome> {
    // Never durable within the caller's synchronous turn, so a caller that does not await is caught.
    await (this.held?.promise ?? Promise.resolve());
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      this.failedWrites += 1;
      throw new Error("no space left on device (simulated)");
    }
    const agents: StoredAgent[] = [];
    for (const agent of batch.state.values()) {
      const at = Math.max(batch.beats.get(agent.record.id) ?? 0, agent.record.lastHeartbeat);
      // Like the file stores, what is durable never holds the live stream flag.
      agents.push({ record: { ...agent.record, lastHeartbeat: at, streamConnected: false, unreachable: undefined }, revision: agent.revision });
    }
    this.disk = { agents, revision: batch.revision };
    this.writes += 1;
    return { bytes: 0, beatsWritten: batch.beats.keys() };
  }
}
