// The Store port on SQLite: $REGISTRY_DATA_DIR/registry.db through better-sqlite3, for fleets past a few
// thousand agents. Writes are incremental (a change writes its agent's row, never the fleet); the commits
// that arrive together share one transaction and one fsync (the commit log's group commit); and they run on
// a writer thread (sqlite-writer.js), so no fsync blocks the event loop. Start-up (check, migrate, load)
// reads synchronously before the server serves. A file that is not agent-registry's, is corrupt, or is
// newer than this server stops the server with a message naming it, and is left as it was.

import Database from "better-sqlite3";
import { lstat, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { AgentId } from "../registry/agent-id.js";
import { StoreError, type StoreSnapshot, type StoredAgent } from "../registry/store.js";
import { TEMP_MARKER, syncDirectory } from "../common/atomic-write.js";
import type { WriteBatch, WriteOutcome } from "./commit-log.js";
import type { DataDirLock } from "./data-dir-lock.js";
import { LocalStore, type LocalStoreOptions } from "./local-store.js";
import { SqliteRows } from "./sqlite-rows.js";
import type { ExportedAgent } from "./store-export.js";
import {
  DELETE_AGENT,
  DELETE_BEAT,
  SELECT_AGENTS,
  SET_REVISION,
  UPSERT_AGENT,
  UPSERT_BEAT,
  agentParams,
  agentRowOf,
  migrate,
  recordOfRow,
} from "./sqlite-schema.js";

export const REGISTRY_DB = "registry.db";
/** Beat times per write, saved in seq order: a few pages a second, however large the fleet. */
export const BEATS_PER_WRITE = 512;
const SQLITE_HEADER = "SQLite format 3\u0000";
/** PRAGMA synchronous reads FULL as 2. */
const SYNCHRONOUS_FULL = 2;

interface Statement {
  readonly sql: string;
  readonly params: readonly unknown[];
}

export class SqliteStore extends LocalStore {
  readonly location: string;
  /** Each agent's row number, and the order beat times are saved in. */
  private readonly rows = new SqliteRows();
  private writer: WriterThread | undefined;

  private constructor(
    private readonly dataDir: string,
    options: LocalStoreOptions,
    lock: DataDirLock,
  ) {
    super(lock, options.lock === undefined, options);
    this.location = join(dataDir, REGISTRY_DB);
  }

  /** Creates the data directory if needed (mode 0700) and takes its lock (unless given it). */
  static async open(dataDir: string, options: LocalStoreOptions = {}): Promise<SqliteStore> {
    return new SqliteStore(dataDir, options, await LocalStore.takeDataDir(dataDir, options));
  }

  async load(): Promise<StoreSnapshot> {
    await this.removeStaleTempFiles();
    if (!(await this.checkFile())) await this.create();
    // The writer thread starts (a new isolate loading better-sqlite3) while this thread reads the agents.
    const writer = new WriterThread(this.location);
    try {
      const snapshot = this.read();
      this.writer = writer;
      await writer.open().catch((error: unknown) => {
        throw new StoreError(`${this.location}: cannot open it for writing: ${(error as Error).message}`, { cause: error });
      });
      return this.loaded(snapshot);
    } catch (error) {
      await writer.stop();
      this.writer = undefined;
      throw error;
    }
  }

  /** Checks, migrates and reads registry.db on a connection of this thread's, synchronously (start-up only). */
  private read(): StoreSnapshot {
    const agents: StoredAgent[] = [];
    try {
      const db = new Database(this.location, { fileMustExist: true });
      try {
        const check = db.pragma("quick_check", { simple: true }) as unknown;
        if (check !== "ok") throw new Error(`SQLite finds it damaged: ${String(check)}`);
        migrate(db);
        db.pragma("journal_mode = WAL");
        // Row by row, as arrays: each is short-lived garbage, not 50 000 objects held until the end.
        for (const values of db.prepare(SELECT_AGENTS).raw().iterate() as IterableIterator<unknown[]>) {
          const row = agentRowOf(values);
          const { agent, extra } = recordOfRow(row);
          agents.push(agent);
          this.rows.add(agent.record.id, row.seq);
          if (extra !== undefined) this.extras.set(agent.record.id, extra);
        }
        const revision = db.prepare(`SELECT value FROM store_meta WHERE key = 'revision'`).pluck().get() as number;
        return { agents, revision };
      } finally {
        db.close();
      }
    } catch (error) {
      throw this.unusable((error as Error).message);
    }
  }

  protected async replaceAll(agents: readonly ExportedAgent[], revision: number): Promise<void> {
    const statements: Statement[] = [{ sql: `DELETE FROM heartbeats`, params: [] }, { sql: `DELETE FROM agents`, params: [] }];
    this.rows.clear();
    agents.forEach((agent, index) => {
      const seq = index + 1;
      this.rows.add(agent.record.id, seq);
      statements.push(
        { sql: UPSERT_AGENT, params: agentParams(seq, agent, agent.extra) },
        { sql: UPSERT_BEAT, params: [seq, agent.record.lastHeartbeat] },
      );
    });
    statements.push({ sql: SET_REVISION, params: [revision] });
    await (this.writer as WriterThread).run(statements);
  }

  /** Stops the writer thread (SQLite checkpoints the WAL as its connection closes). */
  protected async release(): Promise<void> {
    await this.writer?.stop();
  }

  protected async write(batch: WriteBatch): Promise<WriteOutcome> {
    const statements: Statement[] = [];
    const beatsWritten: AgentId[] = [];
    const added: Array<[AgentId, number]> = [];
    const removed: AgentId[] = [];
    for (const change of batch.changes) {
      const known = this.rows.seqOf(change.id);
      if (change.record === undefined) {
        if (known === undefined) continue;
        statements.push({ sql: DELETE_BEAT, params: [known] }, { sql: DELETE_AGENT, params: [known] });
        removed.push(change.id);
        continue;
      }
      const agent = batch.state.get(change.id) as StoredAgent;
      const seq = known ?? this.rows.nextSeq(added.length);
      if (known === undefined) added.push([change.id, seq]);
      const at = Math.max(agent.record.lastHeartbeat, batch.beats.get(change.id) ?? 0);
      statements.push(
        { sql: UPSERT_AGENT, params: agentParams(seq, agent, this.extras.get(change.id)) },
        { sql: UPSERT_BEAT, params: [seq, at] },
      );
      if (batch.beats.has(change.id)) beatsWritten.push(change.id);
    }
    // Every waiting beat time on the last write; else a bounded batch, in row order.
    const beats = this.rows.sweep(batch.beats, batch.final ? Number.POSITIVE_INFINITY : BEATS_PER_WRITE);
    for (const [id, at] of beats) {
      statements.push({ sql: UPSERT_BEAT, params: [this.rows.seqOf(id), at] });
      beatsWritten.push(id);
    }
    statements.push({ sql: SET_REVISION, params: [batch.revision] });
    await (this.writer as WriterThread).run(statements);
    for (const [id, seq] of added) this.rows.add(id, seq);
    for (const id of removed) {
      this.rows.remove(id);
      this.extras.delete(id);
    }
    return { bytes: statementBytes(statements), beatsWritten };
  }

  /**
   * Makes a new, empty registry.db: built under a temp name (mode 0600, which SQLite gives its -wal and -shm
   * files too) and renamed into place, so a crash mid-way never leaves a half-made database behind.
   */
  private async create(): Promise<void> {
    const temp = `${this.location}${TEMP_MARKER}${process.pid}`;
    try {
      await (await open(temp, "w", 0o600)).close();
      const db = new Database(temp, { fileMustExist: true });
      try {
        migrate(db);
        db.pragma("journal_mode = WAL");
      } finally {
        db.close();
      }
      await rename(temp, this.location);
      await syncDirectory(this.dataDir);
    } catch (error) {
      await rm(temp, { force: true });
      throw new StoreError(`cannot create ${this.location}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Temp databases are only ever left by a crash while one was being made; they hold nothing. */
  private async removeStaleTempFiles(): Promise<void> {
    const prefix = `${REGISTRY_DB}${TEMP_MARKER}`;
    let names: string[];
    try {
      names = await readdir(this.dataDir);
    } catch (error) {
      throw new StoreError(`cannot list the data directory ${this.dataDir}: ${(error as Error).message}`, { cause: error });
    }
    for (const name of names) if (name.startsWith(prefix)) await rm(join(this.dataDir, name), { force: true });
  }

  /** Whether registry.db exists; refuses a file SQLite would misread or that is not a database at all. */
  private async checkFile(): Promise<boolean> {
    let stat;
    try {
      stat = await lstat(this.location);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw this.unusable(`cannot read it: ${(error as Error).message}`);
    }
    if (stat.isSymbolicLink()) {
      throw this.unusable("it is a symbolic link; SQLite keeps its journal beside the path it opens, so point REGISTRY_DATA_DIR at the real directory instead");
    }
    if (!stat.isFile()) throw this.unusable("it is not a regular file");
    if (stat.size === 0) throw this.unusable("the file is empty (0 bytes); a registry.db that lost its content must be restored or removed");
    const header = Buffer.alloc(SQLITE_HEADER.length);
    try {
      const file = await open(this.location, "r");
      try {
        await file.read(header, 0, header.length, 0);
      } finally {
        await file.close();
      }
    } catch (error) {
      throw this.unusable(`cannot read it: ${(error as Error).message}`);
    }
    if (header.toString("latin1") !== SQLITE_HEADER) throw this.unusable("it is not an SQLite database (its first bytes are not SQLite's header)");
    return true;
  }

  private unusable(problem: string): StoreError {
    return new StoreError(
      `${this.location}: ${problem}. The server did not start and left the file untouched; restore it from a backup, or move it (with its -wal and -shm files) away to start empty`,
    );
  }
}

/** Roughly what a write carries: the parameters' sizes (SQLite adds its page overhead). */
function statementBytes(statements: readonly Statement[]): number {
  let bytes = 0;
  for (const { params } of statements) {
    for (const param of params) bytes += typeof param === "string" ? Buffer.byteLength(param) : 8;
  }
  return bytes;
}

/** The writer thread, seen from the store: requests in, one answer each; started again if it ever dies. */
class WriterThread {
  private worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(answer: unknown): void; reject(error: Error): void }>();
  private stopping = false;

  /** Starts the thread; its connection opens with open(). */
  constructor(private readonly file: string) {
    this.worker = this.spawn();
  }

  /**
   * Opens the thread's connection; refuses (as an Error saying why) one that did not get WAL with
   * synchronous=FULL, which is what makes an acknowledged commit survive power loss.
   */
  async open(): Promise<void> {
    const settings = (await this.request({ open: true })) as { journalMode?: unknown; synchronous?: unknown } | undefined;
    if (settings?.journalMode !== "wal" || settings.synchronous !== SYNCHRONOUS_FULL) {
      throw new Error(
        `SQLite runs it with journal_mode=${String(settings?.journalMode)} and synchronous=${String(settings?.synchronous)}, not WAL with synchronous=FULL (${SYNCHRONOUS_FULL}); keep REGISTRY_DATA_DIR on a local file system`,
      );
    }
  }

  async run(statements: readonly Statement[]): Promise<void> {
    await this.request({ statements });
  }

  /** Closes the connection (SQLite checkpoints the WAL) and ends the thread. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    try {
      await this.request({ close: true });
    } finally {
      await this.worker.terminate();
    }
  }

  /** Resolves with what the thread answered beyond "ok" (the connection's settings, for `open`). */
  private request(message: { open: true } | { statements: readonly Statement[] } | { close: true }): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...message });
    });
  }

  private spawn(): Worker {
    const worker = new Worker(new URL("./sqlite-writer.js", import.meta.url), { workerData: { file: this.file } });
    let failure: Error | undefined;
    worker.on("message", (reply: { id: number; ok: boolean; message?: string; code?: string; settings?: unknown }) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.settings);
      else waiter?.reject(Object.assign(new Error(reply.message ?? "the write failed"), { code: reply.code }));
    });
    worker.on("error", (error) => (failure = error));
    // A thread that died takes its requests with it; the next request goes to a new one.
    worker.on("exit", (code) => {
      const reason = new Error(`the SQLite writer thread stopped: ${failure?.message ?? `exit code ${code}`}`);
      for (const waiter of this.pending.values()) waiter.reject(reason);
      this.pending.clear();
      if (!this.stopping && this.worker === worker) this.worker = this.spawn();
    });
    return worker;
  }
}
