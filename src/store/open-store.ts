// Start-up wiring's one place that names a store implementation: the configured kind becomes an opened,
// locked store on the data directory. Nothing else in the server knows which store it runs on. Each is
// loaded only when chosen (better-sqlite3 and its native module cost a json server's start-up for nothing).

import type { StoreKind } from "../config/index.js";
import type { StoreObserver } from "../registry/store.js";
import type { DataDirLock } from "./data-dir-lock.js";
import type { MigratableStore } from "./store-export.js";

export interface OpenStoreOptions {
  readonly observer?: StoreObserver | undefined;
  /** The data directory's lock when the caller holds it already (migrate opens two stores under one). */
  readonly lock?: DataDirLock | undefined;
}

export async function openStore(kind: StoreKind, dataDir: string, options: OpenStoreOptions = {}): Promise<MigratableStore> {
  switch (kind) {
    case "json":
      return (await import("./json-file-store.js")).JsonFileStore.open(dataDir, options);
    case "sqlite":
      return (await import("./sqlite-store.js")).SqliteStore.open(dataDir, options);
  }
}
