// The Store port on one JSON file, $REGISTRY_DATA_DIR/agents.json (the prototype's format). Every write
// rewrites the whole file atomically; the commit log lets the commits that arrive while one write is under
// way share the next (group commit), and each agent's line is encoded again only when a commit changed it
// (a beat time alone is set into the line it had). Whole-file
// rewrites make a write cost grow with the fleet: past a few thousand agents, sqlite is the better store.

import { lstat, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { AgentId } from "../registry/agent-id.js";
import { StoreError, type StoreSnapshot } from "../registry/store.js";
import { type AtomicWriteFs, TEMP_MARKER, writeFileAtomic } from "../common/atomic-write.js";
import { type AgentLineParts, type DecodedAgent, decodeAgents, encodeAgent, encodeAgentParts, joinAgentLines, lineOf } from "./agents-file-format.js";
import type { WriteBatch, WriteOutcome } from "./commit-log.js";
import type { DataDirLock } from "./data-dir-lock.js";
import { LocalStore, type LocalStoreOptions } from "./local-store.js";
import type { ExportedAgent } from "./store-export.js";

export const AGENTS_FILE = "agents.json";
/** Far beyond any fleet this store is meant for (10 000 agents take about 3 MB). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

export interface JsonFileStoreOptions extends LocalStoreOptions {
  /** The file operations of the atomic write (tests wrap them). */
  readonly fs?: AtomicWriteFs | undefined;
}

export class JsonFileStore extends LocalStore {
  readonly location: string;
  /**
   * Each agent's line as last written: its parts for the revision that last changed it, and the line with
   * the beat time it was written with. A beat alone changes only the time between the parts.
   */
  private readonly lines = new Map<AgentId, { readonly revision: number; readonly parts: AgentLineParts; at: number; line: string }>();

  private constructor(
    private readonly dataDir: string,
    private readonly fs: AtomicWriteFs | undefined,
    options: JsonFileStoreOptions,
    lock: DataDirLock,
  ) {
    super(lock, options.lock === undefined, options);
    this.location = join(dataDir, AGENTS_FILE);
  }

  /** Creates the data directory if needed (mode 0700) and takes its lock (unless given it). */
  static async open(dataDir: string, options: JsonFileStoreOptions = {}): Promise<JsonFileStore> {
    return new JsonFileStore(dataDir, options.fs, options, await LocalStore.takeDataDir(dataDir, options));
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
    return this.loaded({ agents, revision });
  }

  protected async replaceAll(agents: readonly ExportedAgent[], _revision: number): Promise<void> {
    const text = joinAgentLines(agents.map(({ record, extra, revision }) => encodeAgent({ record, extra: extra ?? {}, revision })));
    await writeFileAtomic(this.location, text, this.fs === undefined ? {} : { fs: this.fs });
    this.lines.clear();
  }

  protected release(): Promise<void> {
    return Promise.resolve();
  }

  protected async write(batch: WriteBatch): Promise<WriteOutcome> {
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
      let cached = this.lines.get(id);
      if (cached === undefined || cached.revision !== agent.revision) {
        const parts = encodeAgentParts({ record: agent.record, extra: this.extras.get(id) ?? {}, revision: agent.revision });
        cached = { revision: agent.revision, parts, at, line: lineOf(parts, at) };
        this.lines.set(id, cached);
      } else if (cached.at !== at) {
        cached.at = at;
        cached.line = lineOf(cached.parts, at);
      }
      yield cached.line;
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
