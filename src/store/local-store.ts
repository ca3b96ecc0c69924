// What the stores kept in this process's data directory (agents.json, registry.db) share: the data
// directory's lock, the commit log that orders their commits once load() succeeded (nothing is written
// before: a file that failed to load is never overwritten), and the keys of a prototype's file that this
// server does not know. A subclass says how to read its file and how a batch reaches the disk.

import { mkdir } from "node:fs/promises";
import type { AgentId } from "../registry/agent-id.js";
import { type Commit, type StoreChange, StoreError, type StoreObserver, type StoreSnapshot, type StoredAgent } from "../registry/store.js";
import { CommitLog, type WriteBatch, type WriteOutcome } from "./commit-log.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import type { ExportedAgent, ExtraKeys, MigratableStore } from "./store-export.js";

export interface LocalStoreOptions {
  readonly observer?: StoreObserver | undefined;
  /** The data directory's lock, when the caller holds it already (migrate); otherwise the store takes it. */
  readonly lock?: DataDirLock | undefined;
  /** How soon beat times left waiting by a write are written (default 1 s; tests shorten it). */
  readonly beatPaceMs?: number | undefined;
}

export abstract class LocalStore implements MigratableStore {
  abstract readonly location: string;
  /** Keys a prototype's agents.json holds that this server does not know, per agent, kept so none is lost. */
  protected readonly extras = new Map<AgentId, ExtraKeys>();
  private log: CommitLog | undefined;

  protected constructor(
    private readonly lock: DataDirLock,
    /** Whether close() releases the lock (the store took it itself). */
    private readonly ownsLock: boolean,
    private readonly options: LocalStoreOptions,
  ) {}

  /** Creates the data directory if needed (mode 0700) and takes its lock, unless the caller holds it. */
  protected static async takeDataDir(dataDir: string, options: LocalStoreOptions): Promise<DataDirLock> {
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreError(`cannot create the data directory ${dataDir}: ${(error as Error).message}`, { cause: error });
    }
    return options.lock ?? (await lockDataDir(dataDir));
  }

  abstract load(): Promise<StoreSnapshot>;

  /** Replaces everything on disk with `agents` at `revision` (the log is closed meanwhile). */
  protected abstract replaceAll(agents: readonly ExportedAgent[], revision: number): Promise<void>;

  /** Makes one batch of the commit log durable. */
  protected abstract write(batch: WriteBatch): Promise<WriteOutcome>;

  /** What close() does after the last write, before the lock is released. */
  protected abstract release(): Promise<void>;

  commit(changes: readonly StoreChange[]): Promise<Commit> {
    if (this.log === undefined) return Promise.reject(this.notLoaded());
    return this.log.commit(changes);
  }

  saveBeats(beats: ReadonlyMap<AgentId, number>): void {
    this.log?.saveBeats(beats);
  }

  watch(fromRevision: number, onCommit: (commit: Commit) => void): () => void {
    if (this.log === undefined) throw this.notLoaded();
    return this.log.watch(fromRevision, onCommit);
  }

  exportAgents(): { agents: ExportedAgent[]; revision: number } {
    if (this.log === undefined) throw this.notLoaded();
    const { agents, revision } = this.log.snapshot();
    return { agents: agents.map((agent) => ({ ...agent, extra: this.extras.get(agent.record.id) })), revision };
  }

  async importAgents(agents: readonly ExportedAgent[], revision: number): Promise<void> {
    if (this.log === undefined) throw this.notLoaded();
    await this.log.close();
    await this.replaceAll(agents, revision);
    this.extras.clear();
    for (const { record, extra } of agents) if (extra !== undefined) this.extras.set(record.id, extra);
    this.loaded({ agents: agents.map(({ record, revision: at }): StoredAgent => ({ record, revision: at })), revision });
  }

  /** Writes what is waiting (every beat time; one last try after a failed write), then releases the store. */
  async close(): Promise<void> {
    await this.log?.close();
    await this.release();
    if (this.ownsLock) await this.lock.release();
  }

  /** The subclass has read `snapshot` from disk: commits may go on from it. */
  protected loaded(snapshot: StoreSnapshot): StoreSnapshot {
    this.log = new CommitLog({ write: (batch) => this.write(batch) }, snapshot, {
      location: this.location,
      observer: this.options.observer,
      ...(this.options.beatPaceMs === undefined ? {} : { beatPaceMs: this.options.beatPaceMs }),
    });
    return snapshot;
  }

  protected notLoaded(): StoreError {
    return new StoreError(`${this.location} was not loaded; refusing to overwrite it`);
  }
}
