// A registry data directory for one store, made before anything is timed: N agents in agents.json
// (fleet-file.ts) and, for sqlite, the same fleet copied into registry.db by the built `agent-registry
// migrate` (agents.json then removed, so the directory holds what a sqlite server keeps). Also what a
// store's files take on disk, for the reports.

import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { StoreKind } from "../src/config/index.js";
import { type FleetFile, writeFleetFile } from "./fleet-file.js";
import { SERVER_CLI } from "./paths.js";
import type { ProcessGroup } from "./processes.js";

export const STORES = ["json", "sqlite"] as const satisfies readonly StoreKind[];

/** The files each store keeps in the data directory (SQLite's write-ahead log included). */
const STORE_FILES: Readonly<Record<StoreKind, readonly string[]>> = {
  json: ["agents.json"],
  sqlite: ["registry.db", "registry.db-wal"],
};

/** `allOnline` as in writeFleetFile. */
export async function writeStoreDataDir(
  processes: ProcessGroup,
  dataDir: string,
  store: StoreKind,
  agents: number,
  nowMs: number,
  allOnline = false,
): Promise<FleetFile> {
  const agentsJson = join(dataDir, "agents.json");
  const fleet = await writeFleetFile(agentsJson, agents, nowMs, allOnline);
  if (store === "json") return fleet;
  const child = processes.spawn("agent-registry migrate", process.execPath, [SERVER_CLI, "migrate", "--from", "json", "--to", "sqlite", "--data-dir", dataDir], {
    env: { PATH: process.env["PATH"], HOME: process.env["HOME"], LOG_LEVEL: "warn" },
  });
  const exit = await child.exited;
  await child.stop(1000);
  if (exit.code !== 0) throw new Error(`agent-registry migrate exited (${exit.code ?? exit.signal}): ${child.output().slice(-2000)}`);
  await rm(agentsJson);
  return { bytes: await storeDataBytes(dataDir, store), ids: fleet.ids };
}

/** Bytes the store's files take now (0 for files that do not exist). */
export async function storeDataBytes(dataDir: string, store: StoreKind): Promise<number> {
  let bytes = 0;
  for (const name of STORE_FILES[store]) bytes += (await stat(join(dataDir, name)).catch(() => undefined))?.size ?? 0;
  return bytes;
}
