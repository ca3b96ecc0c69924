// The Store port on one JSON file, $REGISTRY_DATA_DIR/agents.json. Each write rewrites the whole file
// atomically; commits that arrive while a write is being prepared or is in flight share the next write
// (group commit), so the write rate does not grow with the number of callers.

import { lstat, mkdir, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { AgentId } from "../registry/agent-id.js";
import { type Store, type StoreChange, StoreError, type StoreObserver } from "../registry/store.js";
import type { AgentRecord } from "../registry/agent.js";
import { type DecodedAgent, decodeAgents, encodeAgents } from "./agents-file-format.js";
import { type AtomicWriteFs, TEMP_MARKER, writeFileAtomic } from "./atomic-write.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";

export const AGENTS_FILE = "agents.json";
/** Far beyond any fleet this store is meant for (10 000 agents take about 3 MB). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

export interface JsonFileStoreStats {
  writes: number;
  failures: number;
  bytesWritten: number;
}

interface Waiter {
  resolve(): void;
  reject(error: StoreError): void;
}

export class JsonFileStore implements Store {
  readonly location: string;
  readonly stats: JsonFileStoreStats = { writes: 0, failures: 0, bytesWritten: 0 };
  private readonly agents = new Map<AgentId, DecodedAgent>();
  /** Commits waiting for the next write. */
  private waiting: Waiter[] = [];
  private writing: Promise<void> | undefined;
  private closed = false;
  /** After a failed write, the store retries by itself so it recovers once the disk does. */
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_MIN_MS;
  /** Commits are refused until load() succeeded: a file that failed to load is never overwritten. */
  private loaded = false;

  private constructor(
    private readonly dataDir: string,
    private readonly lock: DataDirLock,
    private readonly fs: AtomicWriteFs | undefined,
    private readonly observer: StoreObserver | undefined,
  ) {
    this.location = join(dataDir, AGENTS_FILE);
  }

  /** Creates the data directory if needed (mode 0700) and takes its lock. */
  static async open(dataDir: string, options: { fs?: AtomicWriteFs; observer?: StoreObserver } = {}): Promise<JsonFileStore> {
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new StoreError(`cannot create the data directory ${dataDir}: ${(error as Error).message}`, { cause: error });
    }
    const lock = await lockDataDir(dataDir);
    return new JsonFileStore(dataDir, lock, options.fs, options.observer);
  }

  async load(): Promise<AgentRecord[]> {
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
    this.agents.clear();
    for (const agent of decoded) this.agents.set(agent.record.id, agent);
    this.loaded = true;
    return decoded.map((agent) => agent.record);
  }

  commit(changes: readonly StoreChange[]): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError(`the store ${this.location} is closed`));
    if (!this.loaded) return Promise.reject(new StoreError(`${this.location} was not loaded; refusing to overwrite it`));
    for (const change of changes) {
      if ("put" in change) {
        const extra = this.agents.get(change.put.id)?.extra ?? {};
        this.agents.set(change.put.id, { record: change.put, extra });
      } else {
        this.agents.delete(change.delete);
      }
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.writing ??= this.writeLoop();
    });
  }

  /** Finishes pending writes (one last try if a failed write awaits its retry), then releases the lock. */
  async close(): Promise<void> {
    const retryPending = this.retryTimer !== undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (retryPending && !this.closed) {
      await this.commit([]).catch(() => undefined); // reported to the observer (health, metrics, log)
    }
    this.closed = true;
    await this.writing;
    await this.lock.release();
  }

  private async writeLoop(): Promise<void> {
    try {
      // Let every commit of this turn of the event loop join the first write.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.waiting.length > 0) await this.writeBatch();
    } finally {
      // Whatever happened, the next commit starts a new loop.
      this.writing = undefined;
    }
  }

  private async writeBatch(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    const started = performance.now();
    let bytes = 0;
    try {
      const text = encodeAgents(this.agents.values());
      bytes = Buffer.byteLength(text);
      await writeFileAtomic(this.location, text, this.fs === undefined ? {} : { fs: this.fs });
    } catch (error) {
      this.stats.failures++;
      const failure = new StoreError(`cannot write ${this.location}: ${(error as Error).message}`, { cause: error });
      for (const waiter of batch) waiter.reject(failure);
      this.scheduleRetry();
      this.observer?.written({ ok: false, durationMs: performance.now() - started, bytes, error: failure });
      return;
    }
    this.stats.writes++;
    this.stats.bytesWritten += bytes;
    this.retryDelayMs = RETRY_MIN_MS;
    for (const waiter of batch) waiter.resolve();
    this.observer?.written({ ok: true, durationMs: performance.now() - started, bytes });
  }

  /** Writes the pending state again later (backing off up to 5 s) until a write succeeds. */
  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      // The outcome reaches the observer (health, metrics, log); a failure schedules the next retry.
      this.commit([]).catch(() => undefined);
    }, this.retryDelayMs);
    this.retryTimer.unref();
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
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
