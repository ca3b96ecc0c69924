// The layout of registry.db and how it moves forward: one row per agent (labels and keys this server does not
// know as JSON columns), beat times in a narrow table of their own (so saving a beat rewrites a few bytes, not
// the agent's row), the store revision, and a schema version with the migrations that lead to it, applied in
// one transaction at start-up (version 2 adds the inventory as a JSON column). Also the checks that turn a row back into a record, naming the row at fault.

import type Database from "better-sqlite3";
import { isAgentId } from "../common/registration-rules.js";
import type { AgentId } from "../registry/agent-id.js";
import type { AgentRecord } from "../registry/agent.js";
import { isSecretHash } from "../registry/agent-secret.js";
import type { StoredAgent } from "../registry/store.js";
import { type StoredInventory, decodeInventory, encodeInventory } from "./inventory-json.js";

export interface Migration {
  /** The schema version this migration leads to. */
  readonly version: number;
  readonly statements: readonly string[];
}

/** Every schema version, oldest first; a database is brought to the last one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID`,
      `INSERT INTO store_meta (key, value) VALUES ('revision', 0)`,
      // seq is the row's stable number (the server hands it out), so beat times can be saved in seq order,
      // a few pages at a time.
      `CREATE TABLE agents (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        revision INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        ip_address TEXT NOT NULL,
        port INTEGER NOT NULL,
        ollama_version TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('online', 'offline')),
        registered_at INTEGER NOT NULL,
        labels TEXT NOT NULL,
        draining INTEGER NOT NULL,
        secret_hash TEXT,
        extra TEXT
      )`,
      `CREATE TABLE heartbeats (seq INTEGER PRIMARY KEY, last_heartbeat INTEGER NOT NULL)`,
    ],
  },
  {
    version: 2,
    // The node's GPUs and models (inventory-json.ts), NULL for a node that never sent them.
    statements: [`ALTER TABLE agents ADD COLUMN inventory TEXT`],
  },
];

export const SCHEMA_VERSION = (MIGRATIONS.at(-1) as Migration).version;

/** A row of `agents` joined with its beat time, as the store reads it. */
export interface AgentRow {
  readonly seq: number;
  readonly id: string;
  readonly revision: number;
  readonly hostname: string;
  readonly ip_address: string;
  readonly port: number;
  readonly ollama_version: string;
  readonly status: string;
  readonly registered_at: number;
  readonly last_heartbeat: number | null;
  readonly labels: string;
  readonly draining: number;
  readonly secret_hash: string | null;
  readonly extra: string | null;
  readonly inventory: string | null;
}

export const SELECT_AGENTS = `SELECT a.seq, a.id, a.revision, a.hostname, a.ip_address, a.port, a.ollama_version, a.status,
  a.registered_at, h.last_heartbeat, a.labels, a.draining, a.secret_hash, a.extra, a.inventory
  FROM agents a LEFT JOIN heartbeats h ON h.seq = a.seq ORDER BY a.seq`;

/**
 * A row of SELECT_AGENTS read with `.raw()` (its values in column order): reading rows as arrays and naming
 * them here is about twice as fast as letting better-sqlite3 make the objects, which counts at start-up.
 */
export function agentRowOf(values: readonly unknown[]): AgentRow {
  const [seq, id, revision, hostname, ip_address, port, ollama_version, status, registered_at, last_heartbeat, labels, draining, secret_hash, extra, inventory] =
    values as [number, string, number, string, string, number, string, string, number, number | null, string, number, string | null, string | null, string | null];
  return { seq, id, revision, hostname, ip_address, port, ollama_version, status, registered_at, last_heartbeat, labels, draining, secret_hash, extra, inventory };
}

export const UPSERT_AGENT = `INSERT INTO agents
  (seq, id, revision, hostname, ip_address, port, ollama_version, status, registered_at, labels, draining, secret_hash, extra, inventory)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (seq) DO UPDATE SET revision = excluded.revision, hostname = excluded.hostname,
    ip_address = excluded.ip_address, port = excluded.port, ollama_version = excluded.ollama_version,
    status = excluded.status, registered_at = excluded.registered_at, labels = excluded.labels,
    draining = excluded.draining, secret_hash = excluded.secret_hash, extra = excluded.extra,
    inventory = excluded.inventory`;
export const UPSERT_BEAT = `INSERT INTO heartbeats (seq, last_heartbeat) VALUES (?, ?)
  ON CONFLICT (seq) DO UPDATE SET last_heartbeat = excluded.last_heartbeat WHERE excluded.last_heartbeat > heartbeats.last_heartbeat`;
export const DELETE_AGENT = `DELETE FROM agents WHERE seq = ?`;
export const DELETE_BEAT = `DELETE FROM heartbeats WHERE seq = ?`;
export const SET_REVISION = `UPDATE store_meta SET value = ? WHERE key = 'revision'`;

/** The parameters of UPSERT_AGENT for a record. */
export function agentParams(seq: number, agent: StoredAgent, extra: Readonly<Record<string, unknown>> | undefined): unknown[] {
  const { record } = agent;
  return [
    seq,
    record.id,
    agent.revision,
    record.hostname,
    record.ipAddress,
    record.port,
    record.ollamaVersion,
    record.status,
    record.registeredAt,
    JSON.stringify(record.labels),
    record.draining ? 1 : 0,
    record.secretHash ?? null,
    extra === undefined || Object.keys(extra).length === 0 ? null : JSON.stringify(extra),
    record.inventory === undefined || record.inventoryUpdatedAt === undefined
      ? null
      : JSON.stringify(encodeInventory({ inventory: record.inventory, updatedAt: record.inventoryUpdatedAt })),
  ];
}

/** A row as a record; throws an Error naming the row and the field at fault. */
export function recordOfRow(row: AgentRow): { agent: StoredAgent; extra: Readonly<Record<string, unknown>> | undefined } {
  const where = `agent row ${row.seq}${typeof row.id === "string" ? ` (id ${row.id})` : ""}`;
  const fail = (problem: string): never => {
    throw new Error(`${where}: ${problem}`);
  };
  if (typeof row.id !== "string" || !isAgentId(row.id)) fail(`"id" must be a UUID, got ${JSON.stringify(row.id)}`);
  if (!Number.isSafeInteger(row.revision) || row.revision < 1) fail(`"revision" must be a positive integer, got ${row.revision}`);
  if (!Number.isInteger(row.port) || row.port < 0 || row.port > 65535) fail(`"port" must be from 0 to 65535, got ${row.port}`);
  if (row.status !== "online" && row.status !== "offline") fail(`"status" must be online or offline, got ${JSON.stringify(row.status)}`);
  for (const [name, value] of [["hostname", row.hostname], ["ip_address", row.ip_address], ["ollama_version", row.ollama_version]] as const) {
    if (typeof value !== "string") fail(`"${name}" must be text`);
  }
  if (!Number.isFinite(row.registered_at)) fail(`"registered_at" must be a time in milliseconds`);
  const secretHash =
    row.secret_hash === null ? undefined : isSecretHash(row.secret_hash) ? row.secret_hash : fail(`"secret_hash" must be "sha256:" and 64 hex digits`);
  // Most agents have no labels: "{}" needs no parser.
  const labels = row.labels === "{}" ? {} : parseJsonObject(row.labels, "labels", fail);
  if (!Object.values(labels).every((value) => typeof value === "string")) fail(`"labels" must map keys to strings`);
  let inventory: StoredInventory | undefined;
  if (row.inventory !== null && row.inventory !== undefined) {
    try {
      inventory = decodeInventory(JSON.parse(row.inventory));
    } catch (error) {
      fail(error instanceof SyntaxError ? `"inventory" is not JSON` : (error as Error).message);
    }
  }
  const record: AgentRecord = {
    id: row.id.toLowerCase() as AgentId,
    hostname: row.hostname,
    ipAddress: row.ip_address,
    port: row.port,
    ollamaVersion: row.ollama_version,
    status: row.status as AgentRecord["status"],
    // An agent whose beat time was never saved counts from when it registered.
    lastHeartbeat: row.last_heartbeat ?? row.registered_at,
    registeredAt: row.registered_at,
    labels: labels as Record<string, string>,
    draining: row.draining === 1,
    streamConnected: false,
    livenessHeld: false,
    secretHash,
    inventory: inventory?.inventory,
    inventoryUpdatedAt: inventory?.updatedAt,
  };
  return { agent: { record, revision: row.revision }, extra: row.extra === null ? undefined : parseJsonObject(row.extra, "extra", fail) };
}

function parseJsonObject(text: string, name: string, fail: (problem: string) => never): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return fail(`"${name}" is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail(`"${name}" must be a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * The database's schema version, brought forward to the last one (in one transaction) when it is older.
 * Throws an Error saying what is wrong when the database is not one of ours or is newer than this server.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const latest = (migrations.at(-1) as Migration).version;
  const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).pluck().all() as string[];
  let version = 0;
  if (tables.includes("schema_version")) {
    version = db.prepare(`SELECT version FROM schema_version`).pluck().get() as number;
    if (!Number.isInteger(version)) throw new Error("its schema_version table holds no version");
  } else if (tables.length > 0) {
    throw new Error(`it is an SQLite database, but not agent-registry's (it has tables ${tables.slice(0, 5).join(", ")} and no schema_version)`);
  }
  if (version > latest) {
    throw new Error(`its schema version ${version} is newer than this agent-registry knows (${latest}); run a newer agent-registry on it`);
  }
  if (version === latest) return version;
  db.transaction(() => {
    if (version === 0) db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL)`);
    for (const migration of migrations) {
      if (migration.version <= version) continue;
      for (const statement of migration.statements) db.exec(statement);
    }
    db.exec(`DELETE FROM schema_version`);
    db.prepare(`INSERT INTO schema_version (version) VALUES (?)`).run(latest);
  })();
  return latest;
}
