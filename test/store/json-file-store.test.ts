import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type StoreObserver, StoreError } from "../../src/registry/store.js";
import type { AtomicWriteFs } from "../../src/common/atomic-write.js";
import { LOCK_FILE } from "../../src/store/data-dir-lock.js";
import { AGENTS_FILE, JsonFileStore } from "../../src/store/json-file-store.js";
import { PROTOTYPE_FILE, PROTOTYPE_ROW, TempDirs, WriteCounter, anAgent } from "./agent-records.js";

const dirs = new TempDirs();
const stores: JsonFileStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await dirs.removeAll();
});

async function openStore(dataDir: string, options: { fs?: AtomicWriteFs; observer?: StoreObserver } = {}): Promise<JsonFileStore> {
  const store = await JsonFileStore.open(dataDir, options);
  stores.push(store);
  return store;
}

/** A fresh store on a fresh directory, loaded and ready for commits; `writes` counts its writes. */
async function loadedStore(options: { fs?: AtomicWriteFs } = {}): Promise<{ dir: string; store: JsonFileStore; file: string; writes: WriteCounter }> {
  const dir = await dirs.make();
  const writes = new WriteCounter();
  const store = await openStore(dir, { ...options, observer: writes });
  await store.load();
  return { dir, store, file: join(dir, AGENTS_FILE), writes };
}

async function readAgentsFile(file: string): Promise<Array<Record<string, unknown>>> {
  return JSON.parse(await fsp.readFile(file, "utf8")) as Array<Record<string, unknown>>;
}

const idsIn = (entries: Array<Record<string, unknown>>): unknown[] => entries.map((entry) => entry["id"]).sort();

async function tempFilesIn(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((name) => name.startsWith(`${AGENTS_FILE}.tmp-`));
}

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** The real fs/promises, with every operation of the atomic-write protocol logged in order. */
function recordingFs(dataDir: string, log: string[]): AtomicWriteFs {
  const name = (path: unknown): string => (relative(dataDir, String(path)) || "<data dir>").replace(/\.tmp-\d+-\d+$/, ".tmp-*");
  const open = async (path: Parameters<typeof fsp.open>[0], flags?: string | number, mode?: number): Promise<FileHandle> => {
    const handle = await fsp.open(path, flags, mode);
    const label = name(path);
    log.push(`open ${label} ${String(flags)}`);
    const recorded: Pick<FileHandle, "writeFile" | "sync" | "close"> = {
      writeFile: (data, options) => {
        log.push(`write ${label}`);
        return handle.writeFile(data, options);
      },
      sync: () => {
        log.push(`sync ${label}`);
        return handle.sync();
      },
      close: () => {
        log.push(`close ${label}`);
        return handle.close();
      },
    };
    return recorded as FileHandle;
  };
  return {
    open: open as typeof fsp.open,
    rename: (from, to) => {
      log.push(`rename ${name(from)} -> ${name(to)}`);
      return fsp.rename(from, to);
    },
    rm: (path, options) => {
      log.push(`rm ${name(path)}`);
      return fsp.rm(path, options);
    },
  };
}

/** The real fs/promises, except that the next `failures` renames (and any after `fail(n)`) reject as a full disk would. */
function failingRenameFs(failures: number): AtomicWriteFs & { fail(count: number): void } {
  let left = failures;
  return {
    open: fsp.open,
    rm: fsp.rm,
    rename: (from, to) => {
      if (left > 0) {
        left--;
        return Promise.reject(Object.assign(new Error("ENOSPC: no space left on device, rename"), { code: "ENOSPC" }));
      }
      return fsp.rename(from, to);
    },
    fail: (count) => {
      left = count;
    },
  };
}

describe("a fresh data directory", () => {
  it("loads as an empty registry and writes nothing", async () => {
    const dir = await dirs.make();
    const store = await openStore(dir);

    expect(await store.load()).toEqual({ agents: [], revision: 0 });
    expect(await fsp.readdir(dir)).toEqual([LOCK_FILE]);
  });

  it("is created with mode 0700 when it does not exist", async () => {
    const dir = join(await dirs.make(), "nested", ".ollama-router");
    await openStore(dir);

    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);
  });

  it("gets agents.json as a bare array on the first commit", async () => {
    const { store, file } = await loadedStore();
    const agent = anAgent();

    await store.commit([{ put: agent }]);

    const entries = await readAgentsFile(file);
    expect(Array.isArray(entries)).toBe(true);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ id: agent.id, hostname: agent.hostname, status: "Online" });
  });

  it("gets agents.json with mode 0600", async () => {
    const { store, file } = await loadedStore();

    await store.commit([{ put: anAgent() }]);

    expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe("commit", () => {
  it("resolves only once the file on disk holds the change", async () => {
    const { store, file } = await loadedStore();
    const first = anAgent();
    const second = anAgent({ hostname: "gpu-node-02" });

    await store.commit([{ put: first }]);
    expect(idsIn(await readAgentsFile(file))).toEqual([first.id]);

    await store.commit([{ put: second }]);
    expect(idsIn(await readAgentsFile(file))).toEqual([first.id, second.id].sort());
  });

  it("writes an updated agent in place of the old one, with the revision that changed it", async () => {
    const { store, file } = await loadedStore();
    const agent = anAgent();
    await store.commit([{ put: agent }]);

    await store.commit([{ put: { ...agent, status: "offline", ollamaVersion: "0.2.0" } }]);

    const entries = await readAgentsFile(file);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ id: agent.id, status: "Offline", ollama_version: "0.2.0", revision: 2 });
  });

  it("never writes whether a stream is open: that is live state", async () => {
    const { store, file } = await loadedStore();

    await store.commit([{ put: anAgent({ streamConnected: true }) }]);

    const [entry] = await readAgentsFile(file);
    expect(Object.keys(entry ?? {}).filter((key) => /stream|connected/i.test(key))).toEqual([]);
  });

  it("removes a deleted agent from the file", async () => {
    const { store, file } = await loadedStore();
    const kept = anAgent();
    const removed = anAgent();
    await store.commit([{ put: kept }, { put: removed }]);

    await store.commit([{ delete: removed.id }]);

    expect(idsIn(await readAgentsFile(file))).toEqual([kept.id]);
  });

  it("reports each write and its bytes: the size of the file it wrote", async () => {
    const { store, file, writes } = await loadedStore();

    await store.commit([{ put: anAgent() }]);
    await store.commit([{ put: anAgent() }]);

    expect([writes.ok, writes.failed]).toEqual([2, 0]);
    expect(writes.bytes).toBeGreaterThan((await fsp.stat(file)).size);
  });
});

describe("beat times", () => {
  it("are written into each agent's line as it was, beat after beat, and a commit still rewrites the line it changes", async () => {
    const { dir, file, store, writes } = await loadedStore();
    const [a, b] = [anAgent({ hostname: "gpu-a", labels: { zone: "eu" } }), anAgent({ hostname: "gpu-b" })];
    await store.commit([{ put: a }, { put: b }]);
    for (let beat = 1; beat <= 3; beat++) {
      store.saveBeats(new Map([[a.id, a.lastHeartbeat + beat * 1000], [b.id, b.lastHeartbeat + beat * 1000]]));
      await expect.poll(() => writes.ok).toBe(1 + beat);
    }
    await store.commit([{ put: { ...a, labels: { zone: "us" }, lastHeartbeat: a.lastHeartbeat + 3000 } }]);
    const entries = await readAgentsFile(file);
    expect(entries.map((entry) => [entry["hostname"], entry["last_heartbeat"], entry["labels"]])).toEqual([
      ["gpu-a", new Date(a.lastHeartbeat + 3000).toISOString(), { zone: "us" }],
      ["gpu-b", new Date(b.lastHeartbeat + 3000).toISOString(), {}],
    ]);
    // What a store opened on the file reads is what was written.
    await store.close();
    const reopened = await openStore(dir);
    const loaded = (await reopened.load()).agents.map(({ record }) => [record.hostname, record.lastHeartbeat, record.labels]);
    expect(loaded).toEqual([
      ["gpu-a", a.lastHeartbeat + 3000, { zone: "us" }],
      ["gpu-b", b.lastHeartbeat + 3000, {}],
    ]);
  });
});

describe("close", () => {
  it("finishes a pending commit before it returns", async () => {
    const { store, file } = await loadedStore();
    const agent = anAgent();

    const commit = store.commit([{ put: agent }]);
    await store.close();

    expect(idsIn(await readAgentsFile(file))).toEqual([agent.id]);
    await expect(commit).resolves.toMatchObject({ revision: 1 });
  });
});

describe("an atomic write", () => {
  it("writes a temp file, syncs it, renames it over agents.json and syncs the directory, in that order", async () => {
    const dir = await dirs.make();
    const log: string[] = [];
    const store = await openStore(dir, { fs: recordingFs(dir, log) });
    await store.load();

    await store.commit([{ put: anAgent() }]);

    expect(log).toEqual([
      "open agents.json.tmp-* wx",
      "write agents.json.tmp-*",
      "sync agents.json.tmp-*",
      "close agents.json.tmp-*",
      "rename agents.json.tmp-* -> agents.json",
      "open <data dir> r",
      "sync <data dir>",
      "close <data dir>",
    ]);
  });

  it("creates the temp file in the data directory, beside agents.json", async () => {
    const dir = await dirs.make();
    const log: string[] = [];
    const store = await openStore(dir, { fs: recordingFs(dir, log) });
    await store.load();

    await store.commit([{ put: anAgent() }]);

    // A path outside the directory would show as ../something: rename would not be atomic across filesystems.
    expect(log.filter((entry) => entry.includes(".."))).toEqual([]);
  });

  it("leaves no temp file behind", async () => {
    const { dir, store } = await loadedStore();

    for (let i = 0; i < 5; i++) await store.commit([{ put: anAgent() }]);

    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("never lets a concurrent reader see a partial file", async () => {
    const { store, file } = await loadedStore();
    await store.commit([{ put: anAgent({ hostname: "gpu-node-first" }) }]);
    let writing = true;
    let reads = 0;
    let lastLength = 0;
    const reader = (async () => {
      while (writing) {
        const entries = JSON.parse(await fsp.readFile(file, "utf8")) as unknown;
        expect(Array.isArray(entries)).toBe(true);
        const { length } = entries as unknown[];
        // Each commit adds one agent, so a reader sees the count grow, never shrink.
        expect(length).toBeGreaterThanOrEqual(lastLength);
        lastLength = length;
        reads++;
      }
    })();

    try {
      for (let i = 0; i < 200; i++) {
        await store.commit([{ put: anAgent({ hostname: `gpu-node-${i}`, labels: { padding: "x".repeat(2000) } }) }]);
      }
    } finally {
      writing = false;
      await reader;
    }

    expect(reads).toBeGreaterThan(0);
    expect(await readAgentsFile(file)).toHaveLength(201);
  });
});

describe("group commit", () => {
  it("gathers the commits that arrive during a write into the next single write", async () => {
    const dir = await dirs.make();
    const renameReached = deferred();
    const renameAllowed = deferred();
    let gated = true;
    const writes = new WriteCounter();
    const store = await openStore(dir, {
      observer: writes,
      fs: {
        open: fsp.open,
        rm: fsp.rm,
        rename: async (from, to) => {
          if (gated) {
            gated = false;
            renameReached.resolve();
            await renameAllowed.promise;
          }
          return fsp.rename(from, to);
        },
      },
    });
    await store.load();
    const first = store.commit([{ put: anAgent() }]);
    await renameReached.promise;

    const later = Array.from({ length: 10 }, () => store.commit([{ put: anAgent() }]));
    renameAllowed.resolve();
    await Promise.all([first, ...later]);

    expect(writes.ok).toBe(2);
    expect(await readAgentsFile(join(dir, AGENTS_FILE))).toHaveLength(11);
  });
});

describe("a failed write", () => {
  it("rejects the commit with a StoreError naming the file and the cause", async () => {
    const { store, file } = await loadedStore({ fs: failingRenameFs(1) });

    const commit = store.commit([{ put: anAgent() }]);

    await expect(commit).rejects.toBeInstanceOf(StoreError);
    await expect(commit).rejects.toThrow(`cannot write ${file}: ENOSPC`);
  });

  it("rejects every commit that shared the write, and is reported as a failure", async () => {
    const { store, writes } = await loadedStore({ fs: failingRenameFs(1) });

    const results = await Promise.allSettled([store.commit([{ put: anAgent() }]), store.commit([{ put: anAgent() }])]);

    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
    expect([writes.ok, writes.failed]).toEqual([0, 1]);
  });

  it("leaves the previous file and no temp file", async () => {
    const { dir, store, file } = await loadedStore({ fs: failingRenameFs(0) });
    const kept = anAgent();
    await store.commit([{ put: kept }]);
    const before = await fsp.readFile(file);
    const failing = await openFailingAfterClose(store, dir);

    await expect(failing.commit([{ put: anAgent() }])).rejects.toBeInstanceOf(StoreError);

    expect(await fsp.readFile(file)).toEqual(before);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("keeps nothing of its commits: the next write holds only what was acknowledged", async () => {
    const { store, file, writes } = await loadedStore({ fs: failingRenameFs(1) });
    const lost = anAgent({ hostname: "first" });
    const next = anAgent({ hostname: "second" });
    await expect(store.commit([{ put: lost }])).rejects.toBeInstanceOf(StoreError);

    const committed = await store.commit([{ put: next }]);

    expect(committed.revision).toBe(1);
    expect(idsIn(await readAgentsFile(file))).toEqual([next.id]);
    expect(writes.failed).toBe(1);
  });
});

/** Closes `store` and opens `dir` again with a store whose every rename fails. */
async function openFailingAfterClose(store: JsonFileStore, dir: string): Promise<JsonFileStore> {
  await store.close();
  const failing = await openStore(dir, { fs: failingRenameFs(Number.POSITIVE_INFINITY) });
  await failing.load();
  return failing;
}

describe("a file that cannot be used", () => {
  it("tells the operator the server left the file untouched and how to start empty", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, AGENTS_FILE), "{");
    const store = await openStore(dir);

    await expect(store.load()).rejects.toThrow(/left the file untouched.*"\[\]"/);
  });

  it("is rejected when agents.json is a symbolic link, and the link and its target are left alone", async () => {
    const dir = await dirs.make();
    const elsewhere = await dirs.make();
    const target = join(elsewhere, "real-agents.json");
    const file = join(dir, AGENTS_FILE);
    await fsp.writeFile(target, JSON.stringify([PROTOTYPE_ROW]));
    const before = await fsp.readFile(target);
    await fsp.symlink(target, file);
    const store = await openStore(dir);

    const load = store.load();

    await expect(load).rejects.toBeInstanceOf(StoreError);
    await expect(load).rejects.toThrow(`${file}: it is a symbolic link`);
    await store.close();
    expect((await fsp.lstat(file)).isSymbolicLink()).toBe(true);
    expect(await fsp.readlink(file)).toBe(target);
    expect(await fsp.readFile(target)).toEqual(before);
  });
});

describe("a file the Rust prototype wrote", () => {
  it("loads as it is, every agent at revision 1", async () => {
    const dir = await dirs.make();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, AGENTS_FILE));
    const store = await openStore(dir);

    const { agents, revision } = await store.load();

    expect(agents.map(({ record, revision: at }) => [record.hostname, record.status, at])).toEqual([
      ["gpu-node-01", "online", 1],
      ["gpu-node-02", "offline", 1],
      ["gpu-node-03", "online", 1],
    ]);
    expect(revision).toBe(1);
  });

  it("keeps its untouched agents and their unknown keys when one agent changes", async () => {
    const dir = await dirs.make();
    const file = join(dir, AGENTS_FILE);
    const prototype = JSON.parse(await fsp.readFile(PROTOTYPE_FILE, "utf8")) as Array<Record<string, unknown>>;
    await fsp.writeFile(file, JSON.stringify(prototype.map((entry) => ({ ...entry, gpu_model: "A100" }))));
    const store = await openStore(dir);
    const { agents } = await store.load();
    const first = agents[0]!.record;

    await store.commit([{ put: { ...first, status: "offline" }, expectedRevision: 1 }]);

    const entries = await readAgentsFile(file);
    expect(entries).toHaveLength(3);
    expect(entries.map((entry) => entry["gpu_model"])).toEqual(["A100", "A100", "A100"]);
    expect(entries.find((entry) => entry["id"] === first.id)).toMatchObject({ status: "Offline", revision: 2 });
  });
});

describe("stale temp files", () => {
  it("are removed by load and do not affect the loaded data", async () => {
    const dir = await dirs.make();
    const file = join(dir, AGENTS_FILE);
    await fsp.copyFile(PROTOTYPE_FILE, file);
    await fsp.writeFile(join(dir, `${AGENTS_FILE}.tmp-123-1`), "[{\"id\": \"half-writ");
    await fsp.writeFile(join(dir, `${AGENTS_FILE}.tmp-456-7`), "[]");
    const store = await openStore(dir);

    const { agents } = await store.load();

    expect(agents).toHaveLength(3);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("alone, without agents.json, load as an empty registry", async () => {
    const dir = await dirs.make();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, `${AGENTS_FILE}.tmp-123-1`));
    const store = await openStore(dir);

    expect(await store.load()).toEqual({ agents: [], revision: 0 });
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("leave other files in the data directory alone", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, "agent-state.json"), "{}");
    await fsp.writeFile(join(dir, "agents.json.bak"), "[]");
    const store = await openStore(dir);

    await store.load();

    expect((await fsp.readdir(dir)).sort()).toEqual(["agent-state.json", "agents.json.bak", LOCK_FILE].sort());
  });
});

describe("before load", () => {
  it("refuses commits, so a file that failed to load is never overwritten", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, "agents.json"), "{ not json");
    const store = await openStore(dir);
    await expect(store.load()).rejects.toBeInstanceOf(StoreError);
    await expect(store.commit([{ put: anAgent() }])).rejects.toThrow("refusing to overwrite");
    expect(await fsp.readFile(join(dir, "agents.json"), "utf8")).toBe("{ not json");
  });
});

describe("recovery from a failing disk", () => {
  it("writes the state again by itself once the disk works, without a new commit", async () => {
    const renames = failingRenameFs(0);
    const { file, store, writes } = await loadedStore({ fs: renames });
    const agent = anAgent();
    await store.commit([{ put: agent }]);
    renames.fail(2);
    await expect(store.commit([{ put: anAgent() }])).rejects.toBeInstanceOf(StoreError);
    // Retries back off (0.25 s, then 0.5 s); the second succeeds.
    await expect.poll(() => writes.lastOk, { timeout: 5000, interval: 50 }).toBe(true);
    expect(writes.failed).toBe(2);
    expect(idsIn(await readAgentsFile(file))).toEqual([agent.id]);
  });
});

describe("closing after a failed write", () => {
  it("makes one last try, so a shutdown writes the beat times still waiting", async () => {
    const renames = failingRenameFs(0);
    const { file, store } = await loadedStore({ fs: renames });
    const agent = anAgent();
    await store.commit([{ put: agent }]);
    renames.fail(1);
    const later = agent.lastHeartbeat + 30_000;
    store.saveBeats(new Map([[agent.id, later]]));
    await new Promise((resolve) => setTimeout(resolve, 20));

    await store.close();

    expect((await readAgentsFile(file))[0]?.["last_heartbeat"]).toBe(new Date(later).toISOString());
  });
});
