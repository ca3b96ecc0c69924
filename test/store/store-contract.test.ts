// The Store contract (store-contract.ts) for each store: the in-memory double the domain tests run on,
// agents.json, and registry.db.

import { join } from "node:path";
import type { Store } from "../../src/registry/store.js";
import { AGENTS_FILE, JsonFileStore } from "../../src/store/json-file-store.js";
import { REGISTRY_DB, SqliteStore } from "../../src/store/sqlite-store.js";
import { MemoryStore } from "../support/memory-store.js";
import { PROTOTYPE_ROW } from "./agent-records.js";
import { describeStoreContract, placeDirs } from "./store-contract.js";

const memory = new Map<string, MemoryStore>();

describeStoreContract({
  name: "in-memory",
  place: () => {
    const key = `memory://${memory.size}`;
    memory.set(key, new MemoryStore([], key));
    return Promise.resolve(key);
  },
  open: (place, observer) => {
    const store = memory.get(place) as MemoryStore;
    store.observe(observer);
    return Promise.resolve(store);
  },
  failWrites: (store: Store) => {
    (store as MemoryStore).failNextWrites(Number.POSITIVE_INFINITY);
    return () => (store as MemoryStore).failNextWrites(0);
  },
});

const validEntry = PROTOTYPE_ROW;

describeStoreContract({
  name: "json",
  place: () => placeDirs.make(),
  open: (place, observer) => JsonFileStore.open(place, { observer }),
  disk: {
    kind: "json",
    file: (place) => join(place, AGENTS_FILE),
    remountable: true,
    unusable: [
      { what: "truncated JSON", content: JSON.stringify([validEntry, validEntry]).slice(0, 150), problem: /not valid JSON/ },
      { what: "nothing (0 bytes)", content: "", problem: /the file is empty/ },
      { what: "an object instead of an array", content: JSON.stringify({ agents: [validEntry] }), problem: /expected a JSON array of agents/ },
      { what: "a port of the wrong type", content: JSON.stringify([{ ...validEntry, port: "abc" }]), problem: /"port" must be a number/ },
      { what: "duplicate ids", content: JSON.stringify([validEntry, validEntry]), problem: /appears more than once/ },
      { what: "binary garbage", content: Buffer.from([0x53, 0x51, 0x4c, 0xff, 0x00, 0x13]), problem: /not valid JSON/ },
    ],
  },
});

describeStoreContract({
  name: "sqlite",
  place: () => placeDirs.make(),
  open: (place, observer) => SqliteStore.open(place, { observer }),
  disk: {
    kind: "sqlite",
    file: (place) => join(place, REGISTRY_DB),
    remountable: false,
    unusable: [
      { what: "nothing (0 bytes)", content: "", problem: /the file is empty/ },
      { what: "text that is not a database", content: JSON.stringify([validEntry]), problem: /not an SQLite database/ },
      { what: "SQLite's header and then garbage", content: Buffer.concat([Buffer.from("SQLite format 3\u0000"), Buffer.alloc(4080, 0x5a)]), problem: /database|malformed|damaged/i },
    ],
  },
});
