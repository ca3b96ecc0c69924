// What a server's store holds on disk, read the way an operator would (the file, or the database, opened
// read-only beside the running server), whatever store the tests run on.

import Database from "better-sqlite3";
import { access, copyFile, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { StoreKind } from "../../src/config/index.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import { decodeAgents } from "../../src/store/agents-file-format.js";
import { AGENTS_FILE } from "../../src/store/json-file-store.js";
import { migrateStore } from "../../src/store/migrate.js";
import { type AgentRow, SELECT_AGENTS, recordOfRow } from "../../src/store/sqlite-schema.js";
import { REGISTRY_DB } from "../../src/store/sqlite-store.js";
import type { ServerMetrics } from "../../src/server/metrics.js";
import { testStore } from "./test-server.js";

/** The file the store of `kind` keeps its agents in. */
export function storeFile(dataDir: string, kind: StoreKind = testStore()): string {
  return join(dataDir, kind === "json" ? AGENTS_FILE : REGISTRY_DB);
}

/** Every agent on disk (none when the store has not written yet). Throws if the data does not parse. */
export async function storedAgents(dataDir: string, kind: StoreKind = testStore()): Promise<AgentRecord[]> {
  const file = storeFile(dataDir, kind);
  if (!(await access(file).then(() => true, () => false))) return [];
  if (kind === "json") return decodeAgents(await readFile(file, "utf8")).map((agent) => agent.record);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(SELECT_AGENTS).all() as AgentRow[]).map((row) => recordOfRow(row).agent.record);
  } finally {
    db.close();
  }
}

/** The agent with `id` on disk, if any. */
export async function storedAgent(dataDir: string, id: string, kind: StoreKind = testStore()): Promise<AgentRecord | undefined> {
  return (await storedAgents(dataDir, kind)).find((agent) => agent.id === id);
}

/**
 * What is on disk, to compare before and after something that must write nothing: agents.json's bytes, or
 * every row of registry.db (SQLite moves pages about without a change of content).
 */
export async function onDisk(dataDir: string, kind: StoreKind = testStore()): Promise<string> {
  if (kind === "json") return readFile(storeFile(dataDir, kind), "utf8").catch(() => "");
  return JSON.stringify(await storedAgents(dataDir, kind));
}

/** Successful writes of the server's store so far, from its metrics. */
export async function storeWrites(metrics: ServerMetrics): Promise<number> {
  const metric = await metrics.registry.getSingleMetric("agent_registry_store_writes_total")?.get();
  return metric?.values.find((sample) => sample.labels["result"] === "ok")?.value ?? 0;
}

export const PROTOTYPE_FILE = new URL("../fixtures/prototype-agents.json", import.meta.url);

/**
 * Seeds `dataDir` with the prototype's example agents.json, as the store the tests run on holds it: the
 * file itself for json; for sqlite, migrated into registry.db (and the file removed, so that nothing reads it).
 */
export async function seedPrototypeAgents(dataDir: string, kind: StoreKind = testStore()): Promise<void> {
  await copyFile(PROTOTYPE_FILE, join(dataDir, AGENTS_FILE));
  if (kind === "json") return;
  await migrateStore(dataDir, "json", kind, { force: false });
  await rm(join(dataDir, AGENTS_FILE));
}
