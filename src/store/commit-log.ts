// The single-writer core of a store that lives in this process (json, sqlite, the tests' in-memory one):
// it holds the durable records, checks each commit's expected revisions against them, gives each commit the
// next revision, and lets the commits that arrive together share one durable write (group commit). Once a
// write is durable it feeds the commits to the watchers, in order, and then answers them; a failed write
// keeps nothing of its commits, and the log writes again by itself (backing off to 5 s) until the disk
// works, so health recovers without a new request. Heartbeat times wait here until they are written.
// How a batch reaches the disk is the Persistence's business (one file rewritten, or rows in SQLite).

import type { AgentId } from "../registry/agent-id.js";
import {
  type Commit,
  type CommittedChange,
  type StoreChange,
  StoreConflict,
  type StoreObserver,
  type StoreSnapshot,
  type StoredAgent,
  ABSENT,
  StoreError,
  persistedFieldsEqual,
} from "../registry/store.js";

/** The records as they will be once a batch is durable. */
export interface DurableState {
  get(id: AgentId): StoredAgent | undefined;
  /** In a stable order: the order agents first appeared in, new ones last. */
  values(): Iterable<StoredAgent>;
  readonly size: number;
}

export interface WriteBatch {
  /** The store revision once this batch is durable. */
  readonly revision: number;
  /** The changes a store keeps, in commit order (a change of the stream's presence alone is left out). */
  readonly changes: readonly CommittedChange[];
  readonly state: DurableState;
  /** Heartbeat times waiting to be written, oldest first; a store may write some now and the rest later. */
  readonly beats: ReadonlyMap<AgentId, number>;
  /** The last write before the store closes: every waiting beat time should go with it. */
  readonly final: boolean;
}

export interface WriteOutcome {
  readonly bytes: number;
  /** The beat times this write made durable. */
  readonly beatsWritten: Iterable<AgentId>;
}

export interface Persistence {
  /** Makes `batch` durable, or rejects having kept none of it. Called for one batch at a time. */
  write(batch: WriteBatch): Promise<WriteOutcome>;
}

export interface CommitLogOptions {
  readonly location: string;
  readonly observer?: StoreObserver | undefined;
  /** How soon to write beat times a write left waiting (a store that writes them in bounded batches). */
  readonly beatPaceMs?: number;
}

interface Pending {
  readonly changes: readonly StoreChange[];
  resolve(commit: Commit): void;
  reject(error: Error): void;
}

/** Commits the log still holds for watch(fromRevision). */
const HISTORY_LIMIT = 1024;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

const idOf = (change: StoreChange): AgentId => ("put" in change ? change.put.id : change.delete);

export class CommitLog {
  readonly location: string;
  private readonly durable = new Map<AgentId, StoredAgent>();
  private revision: number;
  private waiting: Pending[] = [];
  private writing: Promise<void> | undefined;
  /** Beat times not yet written, in the order they first waited. */
  private readonly beats = new Map<AgentId, number>();
  private beatsDue = false;
  /** Set after a failed write: the next batch writes even with nothing new, to find out if the disk is back. */
  private probeDue = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_MIN_MS;
  private paceTimer: NodeJS.Timeout | undefined;
  private readonly history: Commit[] = [];
  private readonly watchers = new Set<(commit: Commit) => void>();
  private closing = false;

  constructor(
    private readonly persistence: Persistence,
    snapshot: StoreSnapshot,
    private readonly options: CommitLogOptions,
  ) {
    this.location = options.location;
    for (const agent of snapshot.agents) this.durable.set(agent.record.id, agent);
    this.revision = snapshot.revision;
  }

  /** What is durable now. */
  snapshot(): StoreSnapshot {
    return { agents: [...this.durable.values()], revision: this.revision };
  }

  get(id: AgentId): StoredAgent | undefined {
    return this.durable.get(id);
  }

  commit(changes: readonly StoreChange[]): Promise<Commit> {
    if (this.closing) return Promise.reject(new StoreError(`the store ${this.location} is closed`));
    const ids = new Set(changes.map(idOf));
    if (ids.size !== changes.length) return Promise.reject(new Error("a commit may change each agent once"));
    return new Promise((resolve, reject) => {
      this.waiting.push({ changes, resolve, reject });
      this.kick();
    });
  }

  saveBeats(beats: ReadonlyMap<AgentId, number>): void {
    if (this.closing || beats.size === 0) return;
    for (const [id, at] of beats) {
      // A beat time only moves forward; keeping the first position keeps the oldest waiting first.
      if (at > (this.beats.get(id) ?? -Infinity)) this.beats.set(id, at);
    }
    this.beatsDue = true;
    this.kick();
  }

  watch(fromRevision: number, onCommit: (commit: Commit) => void): () => void {
    const oldest = this.history[0]?.revision ?? this.revision + 1;
    if (fromRevision < oldest - 1) {
      throw new StoreError(
        `${this.location} holds the commits after revision ${oldest - 1} only, not those after ${fromRevision}; load the store again`,
      );
    }
    for (const commit of this.history) if (commit.revision > fromRevision) onCommit(commit);
    this.watchers.add(onCommit);
    return () => this.watchers.delete(onCommit);
  }

  /** Writes what is waiting (every beat time, one last try after a failed write), then refuses commits. */
  async close(): Promise<void> {
    if (this.closing) return this.writing;
    this.closing = true;
    clearTimeout(this.paceTimer);
    const retryPending = this.retryTimer !== undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (retryPending) this.probeDue = true;
    if (this.beats.size > 0) this.beatsDue = true;
    this.kick();
    await this.writing;
  }

  private kick(): void {
    this.writing ??= this.loop();
  }

  private async loop(): Promise<void> {
    try {
      // Let every commit of this turn of the event loop join the first write.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.waiting.length > 0 || this.beatsDue || this.probeDue) await this.writeBatch();
    } finally {
      // Whatever happened, the next commit starts a new loop.
      this.writing = undefined;
    }
  }

  private async writeBatch(): Promise<void> {
    const queued = this.waiting;
    this.waiting = [];
    const next = new Overlay(this.durable);
    const accepted: Array<{ pending: Pending; commit: Commit }> = [];
    const deferred: Pending[] = [];
    const stored: CommittedChange[] = [];
    let revision = this.revision;
    for (const pending of queued) {
      // An agent changes at most once a batch: a second commit of it waits for the next one, so expected
      // revisions are always checked against what is durable.
      if (pending.changes.some((change) => next.touched(idOf(change)))) {
        deferred.push(pending);
        continue;
      }
      const conflict = this.conflictOf(pending.changes);
      if (conflict !== undefined) {
        pending.reject(conflict);
        continue;
      }
      revision++;
      const changes: CommittedChange[] = [];
      for (const change of pending.changes) {
        const id = idOf(change);
        const before = this.durable.get(id)?.record;
        const record = "put" in change ? change.put : undefined;
        next.set(id, record === undefined ? undefined : { record, revision });
        changes.push({ id, record });
        if (record === undefined ? before !== undefined : before === undefined || !persistedFieldsEqual(before, record)) {
          stored.push({ id, record });
        }
      }
      accepted.push({ pending, commit: { revision, changes } });
    }
    this.waiting = [...deferred, ...this.waiting];

    const beatsDue = this.beatsDue && this.beats.size > 0;
    const probe = this.probeDue;
    // Both are asked for again by a timer (the beat pace, the retry after a failure), never by a write.
    this.beatsDue = false;
    this.probeDue = false;
    if (stored.length > 0 || beatsDue || probe) {
      const written = await this.write({ revision, changes: stored, state: next, beats: this.beats, final: this.closing });
      if (written instanceof StoreError) {
        for (const { pending } of accepted) pending.reject(written);
        return;
      }
      this.keepBeats(written, next);
    }
    next.applyTo(this.durable);
    this.revision = revision;
    for (const { pending, commit } of accepted) {
      this.remember(commit);
      for (const watcher of this.watchers) {
        try {
          watcher(commit);
        } catch (error) {
          // A watcher that throws has a bug; let it surface rather than wedge every later commit.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
      pending.resolve(commit);
    }
  }

  /** One write through the persistence, reported to the observer; its failure as a StoreError. */
  private async write(batch: WriteBatch): Promise<WriteOutcome | StoreError> {
    const started = performance.now();
    try {
      const outcome = await this.persistence.write(batch);
      this.retryDelayMs = RETRY_MIN_MS;
      this.options.observer?.written({ ok: true, durationMs: performance.now() - started, bytes: outcome.bytes });
      return outcome;
    } catch (error) {
      const failure = new StoreError(`cannot write ${this.location}: ${(error as Error).message}`, {
        cause: error,
        problem: `the store cannot write: ${writeProblem(error)}`,
      });
      this.options.observer?.written({ ok: false, durationMs: performance.now() - started, bytes: 0, error: failure });
      this.scheduleRetry();
      return failure;
    }
  }

  /** Beat times now durable stop waiting (unless a newer one came meanwhile) and join the durable records. */
  private keepBeats(outcome: WriteOutcome, next: Overlay): void {
    for (const id of outcome.beatsWritten) {
      const at = this.beats.get(id);
      const agent = next.get(id);
      if (at === undefined) continue;
      this.beats.delete(id);
      if (agent !== undefined && at > agent.record.lastHeartbeat) {
        next.set(id, { record: { ...agent.record, lastHeartbeat: at }, revision: agent.revision });
      }
    }
    for (const id of this.beats.keys()) if (next.get(id) === undefined) this.beats.delete(id);
    if (this.beats.size > 0 && !this.closing && this.paceTimer === undefined) {
      this.paceTimer = setTimeout(() => {
        this.paceTimer = undefined;
        this.beatsDue = true;
        this.kick();
      }, this.options.beatPaceMs ?? 1000);
      this.paceTimer.unref();
    }
  }

  private conflictOf(changes: readonly StoreChange[]): StoreConflict | undefined {
    for (const change of changes) {
      if (change.expectedRevision === undefined) continue;
      const id = idOf(change);
      const actual = this.durable.get(id)?.revision ?? ABSENT;
      if (actual !== change.expectedRevision) return new StoreConflict(id, change.expectedRevision, actual);
    }
    return undefined;
  }

  private remember(commit: Commit): void {
    this.history.push(commit);
    if (this.history.length > HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
  }

  /** After a failed write, write again later (backing off to 5 s) until one succeeds. */
  private scheduleRetry(): void {
    if (this.closing || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.probeDue = true;
      this.kick();
    }, this.retryDelayMs);
    this.retryTimer.unref();
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
  }
}

/** The durable records with one batch's changes laid over them, without copying the map. */
class Overlay implements DurableState {
  private readonly changed = new Map<AgentId, StoredAgent | undefined>();

  constructor(private readonly base: ReadonlyMap<AgentId, StoredAgent>) {}

  get size(): number {
    let size = this.base.size;
    for (const [id, agent] of this.changed) size += (agent === undefined ? 0 : 1) - (this.base.has(id) ? 1 : 0);
    return size;
  }

  touched(id: AgentId): boolean {
    return this.changed.has(id);
  }

  set(id: AgentId, agent: StoredAgent | undefined): void {
    this.changed.set(id, agent);
  }

  get(id: AgentId): StoredAgent | undefined {
    return this.changed.has(id) ? this.changed.get(id) : this.base.get(id);
  }

  *values(): Generator<StoredAgent> {
    for (const [id, agent] of this.base) {
      if (!this.changed.has(id)) yield agent;
      else {
        const changed = this.changed.get(id);
        if (changed !== undefined) yield changed;
      }
    }
    for (const [id, agent] of this.changed) if (agent !== undefined && !this.base.has(id)) yield agent;
  }

  applyTo(target: Map<AgentId, StoredAgent>): void {
    for (const [id, agent] of this.changed) {
      if (agent === undefined) target.delete(id);
      else target.set(id, agent);
    }
  }
}

/** What the operating system or SQLite said of a failed write, in words that name no path. */
const WRITE_PROBLEMS: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is used up",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EIO: "an I/O error",
  EISDIR: "a directory is where its file should be",
  ENOTDIR: "a file is where its directory should be",
  ENOENT: "its directory is gone",
  EMFILE: "too many open files",
  SQLITE_FULL: "the disk is full",
  SQLITE_READONLY: "the database is read-only",
  SQLITE_IOERR: "an I/O error",
  SQLITE_CANTOPEN: "the database cannot be opened",
  SQLITE_CORRUPT: "the database is corrupt",
};

function writeProblem(error: unknown): string {
  const code = error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
  if (code === undefined) return "the write failed";
  const words = WRITE_PROBLEMS[code] ?? WRITE_PROBLEMS[code.split("_").slice(0, 2).join("_")];
  return words === undefined ? `the write failed (${code})` : `${words} (${code})`;
}
