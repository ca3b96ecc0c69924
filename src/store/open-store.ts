// Start-up wiring's one place that names a store implementation: the configured kind becomes an opened,
// locked store on the data directory. Nothing else in the server knows which store it runs on.

import type { StoreKind } from "../config/index.js";
import type { StoreObserver } from "../registry/store.js";
import type { DataDirLock } from "./data-dir-lock.js";
import { JsonFileStore } from "./json-file-store.js";
import { SqliteStore } from "./sqlite-store.js";

export interface OpenStoreOptions {
  readonly observer?: StoreObserver | undefined;
  /** The data directory's lock when the caller holds it already (migrate opens two stores under one). */
  readonly lock?: DataDirLock | undefined;
}

export function openStore(kind: StoreKind, dataDir: string, options: OpenStoreOptions = {}): Promise<JsonFileStore | SqliteStore> {
  switch (kind) {
    case "json":
      return JsonFileStore.open(dataDir, options);
    case "sqlite":
      return SqliteStore.open(dataDir, options);
  }
}
