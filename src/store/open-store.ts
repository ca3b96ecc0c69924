// Start-up wiring's one place that names a store implementation: the configured kind becomes an opened,
// locked store on the data directory. Nothing else in the server knows which store it runs on. Each is
// loaded only when chosen (etcd's client too) (better-sqlite3 and its native module cost a json server's start-up for nothing).

import type { ServerConfig, StoreKind } from "../config/index.js";
import type { Log } from "../common/log.js";
import type { Store, StoreObserver } from "../registry/store.js";
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

/** The server's store: one on the data directory, or etcd shared with other replicas. */
export async function openServerStore(config: Pick<ServerConfig, "store" | "etcd" | "dataDir">, options: OpenStoreOptions & { log?: Log }): Promise<Store> {
  if (config.store !== "etcd") return openStore(config.store, config.dataDir, options);
  if (config.etcd === undefined) throw new Error("REGISTRY_STORE=etcd without REGISTRY_ETCD_ENDPOINTS");
  const { EtcdStore } = await import("./etcd-store.js");
  return new EtcdStore({ endpoints: config.etcd.endpoints, prefix: config.etcd.prefix, observer: options.observer, log: options.log });
}
