// The Store port on one JSON file, $REGISTRY_DATA_DIR/agents.json (the prototype's format). Every write
// rewrites the whole file atomically; the commit log lets the commits that arrive while one write is under
// way share the next (group commit), and each agent's line is encoded again only when it changed. Whole-file
// rewrites make a write cost grow with the fleet: past a few thousand agents, sqlite is the better store.

import { lstat, mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { AgentId } from "../registry/agent-id.js";
import type { Commit, StoreChange, StoreObserver, StoreSnapshot, StoredAgent } from "../registry/store.js";
import { StoreError } from "../registry/store.js";
import { type DecodedAgent, type ExtraKeys, decodeAgents, encodeAgent, joinAgentLines } from "./agents-file-format.js";
import type { ExportedAgent, MigratableStore } from "./store-export.js";
import { type AtomicWriteFs, TEMP_MARKER, writeFileAtomic } from "../common/atomic-write.js";
import { CommitLog, type Persistence, type WriteBatch, type WriteOutcome } from "./commit-log.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";

export const AGENTS_FILE = "agents.json";
/** Far beyond any fleet this store is meant for (10 000 agents take about 3 MB). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

export interface JsonFileStoreOptions {
  /** The file operations of the atomic write (tests wrap them). */
  readonly fs?: AtomicWriteFs | undefined;
  readonly observer?: StoreObserver | undefined;
  /** The data directory's lock, when the caller holds it already (migrate); otherwise the store takes it. */
  readonly lock?: DataDirLock | undefined;
}

export class JsonFileStore implements MigratableStore {
  readonly location: string;
  /** Keys of the file this server does not know, per agent, kept so a rewrite never drops them. */
  private readonly extras = new Map<AgentId, ExtraKeys>();
  /** Each agent's encoded line, for the version of it last written. */
  private readonly lines = new Map<AgentId, { readonly agent: StoredAgent; readonly at: number; readonly line: string }>();
  private log: CommitLog | undefined;

  private constructor(
    private readonly dataDir: string,
    private readonly lock: DataDirLock,
    private readonly ownsLock: boolean,
    private readonly fs: AtomicWriteFs | undefined,
    private readonly observer: StoreObserver | undefined,
  ) {
    this.location = join(dataDir, AGENTS_FILE);
  }

  /** Creates the data directory if needed (mode 0700) and takes its lock (unless given it). */
  static async open(dataDir: string, options: JsonFileStoreOptions = {}): Promise<JsonFileStore> {
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreError(`cannot create the data directory ${dataDir}: ${(error as Error).message}`, { cause: error });
    }
    const lock = options.lock ?? (await lockDataDir(dataDir));
    return new JsonFileStore(dataDir, lock, options.lock === undefined, options.fs, options.observer);
  }

  async load(): Promise<StoreSnapshot> {
    await this.removeStaleTempFiles();
    const text = await this.readFileText();
    let decoded: DecodedAgent[] = [];
    if (text !== undefined) {
      try {
        decoded = decodeAgents(text);
      } catch (error) {
        throw this.unusable((error as Error).message);
      }
    }
    this.extras.clear();
    // A file that does not say (the prototype's) has every agent at revision 1.
    const agents = decoded.map(({ record, extra, revision }) => {
      if (Object.keys(extra).length > 0) this.extras.set(record.id, extra);
      return { record, revision: revision ?? 1 };
    });
    const revision = agents.reduce((highest, agent) => Math.max(highest, agent.revision), 0);
    this.log = this.newLog({ agents, revision });
    return { agents, revision };
  }

  exportAgents(): { agents: ExportedAgent[]; revision: number } {
    if (this.log === undefined) throw this.notLoaded();
    const { agents, revision } = this.log.snapshot();
    return { agents: agents.map((agent) => ({ ...agent, extra: this.extras.get(agent.record.id) })), revision };
  }

  async importAgents(agents: readonly ExportedAgent[], revision: number): Promise<void> {
    if (this.log === undefined) throw this.notLoaded();
    await this.log.close();
    const text = joinAgentLines(agents.map(({ record, extra, revision: at }) => encodeAgent({ record, extra: extra ?? {}, revision: at })));
    await writeFileAtomic(this.location, text, this.fs === undefined ? {} : { fs: this.fs });
    this.extras.clear();
    this.lines.clear();
    for (const { record, extra } of agents) if (extra !== undefined) this.extras.set(record.id, extra);
    this.log = this.newLog({ agents: agents.map(({ record, revision: at }) => ({ record, revision: at })), revision });
  }

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

  /** Writes what is waiting (one last try after a failed write), then releases the lock. */
  async close(): Promise<void> {
    await this.log?.close();
    if (this.ownsLock) await this.lock.release();
  }

  private newLog(snapshot: StoreSnapshot): CommitLog {
    const persistence: Persistence = { write: (batch) => this.write(batch) };
    return new CommitLog(persistence, snapshot, { location: this.location, observer: this.observer });
  }

  /** Commits are refused until load() succeeded: a file that failed to load is never overwritten. */
  private notLoaded(): StoreError {
    return new StoreError(`${this.location} was not loaded; refusing to overwrite it`);
  }

  private async write(batch: WriteBatch): Promise<WriteOutcome> {
    const text = joinAgentLines(this.linesOf(batch));
    await writeFileAtomic(this.location, text, this.fs === undefined ? {} : { fs: this.fs });
    for (const change of batch.changes) {
      if (change.record === undefined) {
        this.extras.delete(change.id);
        this.lines.delete(change.id);
      }
    }
    return { bytes: Buffer.byteLength(text), beatsWritten: batch.beats.keys() };
  }

  private *linesOf(batch: WriteBatch): Generator<string> {
    for (const agent of batch.state.values()) {
      const id = agent.record.id;
      // A beat time waiting to be written goes into the agent's line; a commit may carry a later one.
      const at = Math.max(batch.beats.get(id) ?? 0, agent.record.lastHeartbeat);
      const cached = this.lines.get(id);
      if (cached !== undefined && cached.agent === agent && cached.at === at) {
        yield cached.line;
        continue;
      }
      const record = at === agent.record.lastHeartbeat ? agent.record : { ...agent.record, lastHeartbeat: at };
      const line = encodeAgent({ record, extra: this.extras.get(id) ?? {}, revision: agent.revision });
      this.lines.set(id, { agent, at, line });
      yield line;
    }
  }

  private async readFileText(): Promise<string | undefined> {
    let stat;
    try {
      stat = await lstat(this.location);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw this.unusable(`cannot read it: ${(error as Error).message}`);
    }
    if (stat.isSymbolicLink()) {
      throw this.unusable("it is a symbolic link; every write replaces the file, which would break the link, so point REGISTRY_DATA_DIR at the real directory instead");
    }
    if (!stat.isFile()) throw this.unusable("it is not a regular file");
    if (stat.size > MAX_FILE_BYTES) {
      throw this.unusable(`it is ${stat.size} bytes, more than the ${MAX_FILE_BYTES} this store reads`);
    }
    try {
      return await readFile(this.location, "utf8");
    } catch (error) {
      throw this.unusable(`cannot read it: ${(error as Error).message}`);
    }
  }

  /** Temp files are only ever left by a crash mid-write; they never hold acknowledged state alone. */
  private async removeStaleTempFiles(): Promise<void> {
    const prefix = `${AGENTS_FILE}${TEMP_MARKER}`;
    let names: string[];
    try {
      names = await readdir(this.dataDir);
    } catch (error) {
      throw new StoreError(`cannot list the data directory ${this.dataDir}: ${(error as Error).message}`, { cause: error });
    }
    for (const name of names) {
      if (name.startsWith(prefix)) await rm(join(this.dataDir, name), { force: true });
    }
  }

  private unusable(problem: string): StoreError {
    return new StoreError(
      `${this.location}: ${problem}. The server did not start and left the file untouched; fix the file or move it away (an empty registry is "[]")`,
    );
  }
}
