// What the sqlite store does beyond the Store contract (store-contract.ts): registry.db's durability
// settings, its schema version and forward migrations, the files it refuses (newer, foreign, damaged),
// writes that stay the size of the change however large the fleet, and beat times in bounded batches.

import Database from "better-sqlite3";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import { StoreError, type StoredAgent } from "../../src/registry/store.js";
import { MIGRATIONS, SCHEMA_VERSION, migrate } from "../../src/store/sqlite-schema.js";
import { BEATS_PER_WRITE, REGISTRY_DB, SqliteStore } from "../../src/store/sqlite-store.js";
import { TempDirs, WriteCounter, anAgent, anInventory } from "./agent-records.js";

const dirs = new TempDirs();
const stores: SqliteStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await dirs.removeAll();
});

async function loadedStore(options: { dir?: string; beatPaceMs?: number } = {}): Promise<{ dir: string; file: string; store: SqliteStore; writes: WriteCounter }> {
  const dir = options.dir ?? (await dirs.make());
  const writes = new WriteCounter();
  const store = await SqliteStore.open(dir, { observer: writes, beatPaceMs: options.beatPaceMs });
  stores.push(store);
  await store.load();
  return { dir, file: join(dir, REGISTRY_DB), store, writes };
}

/** Runs `read` on registry.db through a read-only connection of its own, as an operator's sqlite3 would. */
function inspect<T>(file: string, read: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** A registry.db made (and closed) by the store, with `agents` registered. */
async function existingDatabase(agents = 1): Promise<{ dir: string; file: string }> {
  const { dir, file, store } = await loadedStore();
  await store.commit(Array.from({ length: agents }, (_, n) => ({ put: anAgent({ hostname: `gpu-${n}` }) })));
  await store.close();
  stores.splice(stores.indexOf(store), 1);
  return { dir, file };
}

async function refusal(dir: string): Promise<StoreError> {
  const store = await SqliteStore.open(dir);
  stores.push(store);
  const error = await store.load().then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

describe("registry.db", () => {
  it("is in WAL mode, at the latest schema version, with one row per agent", async () => {
    const { file, store } = await loadedStore();
    await store.commit([{ put: anAgent() }, { put: anAgent() }]);

    expect(inspect(file, (db) => db.pragma("journal_mode", { simple: true }))).toBe("wal");
    expect(inspect(file, (db) => db.prepare("SELECT version FROM schema_version").pluck().get())).toBe(SCHEMA_VERSION);
    expect(inspect(file, (db) => db.prepare("SELECT count(*) FROM agents").pluck().get())).toBe(2);
    expect(inspect(file, (db) => db.prepare("SELECT value FROM store_meta WHERE key = 'revision'").pluck().get())).toBe(1);
  });

  it("keeps labels as JSON and never holds whether a stream is open", async () => {
    const { file, store } = await loadedStore();
    const agent = anAgent({ labels: { gpu: "a100", zone: "eu" }, streamConnected: true });
    await store.commit([{ put: agent }]);

    const row = inspect(file, (db) => db.prepare("SELECT * FROM agents").get()) as Record<string, unknown>;

    expect(JSON.parse(row["labels"] as string)).toEqual({ gpu: "a100", zone: "eu" });
    expect(Object.keys(row).filter((column) => /stream|connected/i.test(column))).toEqual([]);
  });
});

describe("schema versions", () => {
  it("moves an older database forward through each migration in one transaction, keeping its rows", () => {
    const db = new Database(":memory:");
    migrate(db, MIGRATIONS);
    db.prepare(`INSERT INTO agents (seq, id, revision, hostname, ip_address, port, ollama_version, status, registered_at, labels, draining)
      VALUES (1, '9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48', 1, 'gpu-1', '10.0.0.1', 11434, '', 'online', 0, '{}', 0)`).run();
    const next = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, statements: ["ALTER TABLE agents ADD COLUMN zone TEXT NOT NULL DEFAULT 'eu'"] }];

    expect(migrate(db, next)).toBe(SCHEMA_VERSION + 1);

    expect(db.prepare("SELECT version FROM schema_version").pluck().all()).toEqual([SCHEMA_VERSION + 1]);
    expect(db.prepare("SELECT hostname, zone FROM agents").all()).toEqual([{ hostname: "gpu-1", zone: "eu" }]);
    db.close();
  });

  it("brings a version 1 database (before inventories) to version 2 in one step, its agents loading with no inventory", async () => {
    const dir = await dirs.make();
    const file = join(dir, REGISTRY_DB);
    const v1 = new Database(file);
    migrate(v1, MIGRATIONS.slice(0, 1));
    v1.prepare(`INSERT INTO agents (seq, id, revision, hostname, ip_address, port, ollama_version, status, registered_at, labels, draining)
      VALUES (1, '9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48', 1, 'gpu-1', '10.0.0.1', 11434, '0.5.7', 'online', 0, '{}', 0)`).run();
    v1.prepare("UPDATE store_meta SET value = 1 WHERE key = 'revision'").run();
    v1.close();

    const { store } = await loadedStore({ dir });
    const inventory = anInventory();
    const loaded = (await store.load()).agents;
    await store.commit([{ put: { ...(loaded[0] as StoredAgent).record, inventory, inventoryUpdatedAt: 1_000 } }]);

    expect(loaded.map(({ record }) => [record.hostname, record.inventory])).toEqual([["gpu-1", undefined]]);
    expect(inspect(file, (db) => db.prepare("SELECT version FROM schema_version").pluck().get())).toBe(2);
    expect(inspect(file, (db) => db.prepare("SELECT count(*) FROM agents").pluck().get())).toBe(1);
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    const reloaded = await (await loadedStore({ dir })).store.load();
    expect(reloaded.agents[0]?.record.inventory).toEqual(inventory);
  });

  it("leaves a database untouched when a migration fails", () => {
    const db = new Database(":memory:");
    migrate(db, MIGRATIONS);
    const broken = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, statements: ["CREATE TABLE extra (x)", "NOT SQL AT ALL"] }];

    expect(() => migrate(db, broken)).toThrow();

    expect(db.prepare("SELECT version FROM schema_version").pluck().get()).toBe(SCHEMA_VERSION);
    expect(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'extra'").all()).toEqual([]);
    db.close();
  });

  it("refuses a database of a newer agent-registry, naming its version, and leaves it byte for byte", async () => {
    const { dir, file } = await existingDatabase();
    const db = new Database(file);
    db.prepare("UPDATE schema_version SET version = 99").run();
    db.close();
    const before = await fsp.readFile(file);

    const error = await refusal(dir);

    expect(error.message).toContain(file);
    expect(error.message).toContain("schema version 99 is newer than this agent-registry knows");
    expect(await fsp.readFile(file)).toEqual(before);
  });

  it("refuses an SQLite database that is not agent-registry's, naming its tables, and leaves it byte for byte", async () => {
    const dir = await dirs.make();
    const file = join(dir, REGISTRY_DB);
    const db = new Database(file);
    db.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)");
    db.close();
    const before = await fsp.readFile(file);

    const error = await refusal(dir);

    expect(error.message).toMatch(/not agent-registry's \(it has tables invoices and no schema_version\)/);
    expect(await fsp.readFile(file)).toEqual(before);
  });
});

describe("a damaged registry.db", () => {
  it("is refused at start-up (SQLite's quick_check), naming the file, and left byte for byte", async () => {
    const { dir, file } = await existingDatabase(400);
    const handle = await fsp.open(file, "r+");
    await handle.write(Buffer.alloc(4096, 0x5a), 0, 4096, 3 * 4096);
    await handle.close();
    const before = await fsp.readFile(file);

    const error = await refusal(dir);

    expect(error.message).toContain(file);
    expect(error.message).toMatch(/damaged|malformed/);
    expect(error.message).toContain("left the file untouched");
    expect(await fsp.readFile(file)).toEqual(before);
  });
});

describe("writes", () => {
  /** Bytes the write-ahead log grows by over ten commits of one agent each, in a fleet of `fleet`. */
  async function walGrowth(fleet: number): Promise<number> {
    const { file, store } = await loadedStore();
    for (let done = 0; done < fleet; done += 500) {
      await store.commit(Array.from({ length: Math.min(500, fleet - done) }, () => ({ put: anAgent({ labels: { padding: "x".repeat(200) } }) })));
    }
    const wal = `${file}-wal`;
    // Start from an empty log, so that no checkpoint falls inside the ten commits.
    const db = new Database(file);
    db.pragma("wal_checkpoint(TRUNCATE)");
    db.close();
    const before = (await fsp.stat(wal)).size;
    for (let n = 0; n < 10; n++) await store.commit([{ put: anAgent({ hostname: `gpu-new-${n}` }) }]);
    return (await fsp.stat(wal)).size - before;
  }

  it("write the changed agent's row, not the fleet: ten commits grow the log the same in a fleet of 50 or 5 000", async () => {
    const small = await walGrowth(50);
    const large = await walGrowth(5000);

    expect(small).toBeGreaterThan(0);
    // A few pages a commit either way (a deeper index in the large fleet may add one); whole-file
    // rewrites would grow a hundredfold.
    expect(large).toBeLessThanOrEqual(small * 2);
  });

  it(`save waiting beat times at most ${BEATS_PER_WRITE} a write, in row order, until every one is written`, async () => {
    const { dir, store, writes } = await loadedStore({ beatPaceMs: 20 });
    const agents = Array.from({ length: BEATS_PER_WRITE * 2 + 100 }, (_, n) => anAgent({ hostname: `gpu-${n}` }));
    await store.commit(agents.map((agent) => ({ put: agent })));
    const writesBefore = writes.ok;
    const later = agents[0]!.lastHeartbeat + 60_000;

    store.saveBeats(new Map(agents.map((agent) => [agent.id as AgentId, later])));
    await expect.poll(() => writes.ok - writesBefore, { timeout: 5000, interval: 10 }).toBe(3);

    const saved = inspect(join(dir, REGISTRY_DB), (db) =>
      db.prepare("SELECT count(*) FROM heartbeats WHERE last_heartbeat = ?").pluck().get(later),
    );
    expect(saved).toBe(agents.length);
  });
});
