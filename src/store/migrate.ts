// `agent-registry migrate`: copies every agent from one store to the other in a data directory (agents.json
// to registry.db, or back), keeping ids, revisions, secrets' hashes, timestamps and the keys of the
// prototype's file this server does not know. It holds the data directory's lock throughout, so it refuses
// while a server runs there; it refuses a target that already holds agents unless forced; the source is
// left as it was.

import type { StoreKind } from "../config/index.js";
import { StoreError } from "../registry/store.js";
import { lockDataDir } from "./data-dir-lock.js";
import { openStore } from "./open-store.js";

export interface MigrationResult {
  readonly from: string;
  readonly to: string;
  readonly agents: number;
  readonly revision: number;
}

export async function migrateStore(dataDir: string, from: StoreKind, to: StoreKind, options: { force: boolean }): Promise<MigrationResult> {
  const lock = await lockDataDir(dataDir).catch((error: unknown) => {
    throw new StoreError(`cannot migrate while a server uses the data directory: ${(error as Error).message}`, { cause: error });
  });
  try {
    const source = await openStore(from, dataDir, { lock });
    let exported;
    try {
      const loaded = await source.load();
      if (loaded.agents.length === 0 && loaded.revision === 0) {
        throw new StoreError(`${source.location} holds no agents: nothing to migrate (is --data-dir ${dataDir} the right directory?)`);
      }
      exported = source.exportAgents();
    } finally {
      await source.close();
    }
    const target = await openStore(to, dataDir, { lock });
    try {
      const existing = await target.load();
      if (existing.agents.length > 0 && !options.force) {
        throw new StoreError(
          `${target.location} already holds ${agentsCount(existing.agents.length)}; refusing to replace them (pass --force to replace them with the ${exported.agents.length} of ${source.location})`,
        );
      }
      await target.importAgents(exported.agents, exported.revision);
    } finally {
      await target.close();
    }
    return { from: source.location, to: target.location, agents: exported.agents.length, revision: exported.revision };
  } finally {
    await lock.release();
  }
}

/** "1 agent", "3 agents". */
export function agentsCount(count: number): string {
  return `${count} agent${count === 1 ? "" : "s"}`;
}
