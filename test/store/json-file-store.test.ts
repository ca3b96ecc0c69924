import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentRecord } from "../../src/registry/agent.js";
import { StoreError } from "../../src/registry/store.js";
import type { AtomicWriteFs } from "../../src/store/atomic-write.js";
import { LOCK_FILE } from "../../src/store/data-dir-lock.js";
import { AGENTS_FILE, JsonFileStore } from "../../src/store/json-file-store.js";
import { PROTOTYPE_FILE, TempDirs, anAgent } from "./agent-records.js";

const dirs = new TempDirs();
const stores: JsonFileStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await dirs.removeAll();
});

async function openStore(dataDir: string, options: { fs?: AtomicWriteFs } = {}): Promise<JsonFileStore> {
  const store = await JsonFileStore.open(dataDir, options);
  stores.push(store);
  return store;
}

/** A fresh store on a fresh directory, loaded and ready for commits. */
async function loadedStore(options: { fs?: AtomicWriteFs } = {}): Promise<{ dir: string; store: JsonFileStore; file: string }> {
  const dir = await dirs.make();
  const store = await openStore(dir, options);
  await store.load();
  return { dir, store, file: join(dir, AGENTS_FILE) };
}

async function readAgentsFile(file: string): Promise<Array<Record<string, unknown>>> {
  return JSON.parse(await fsp.readFile(file, "utf8")) as Array<Record<string, unknown>>;
}

const idsIn = (entries: Array<Record<string, unknown>>): unknown[] => entries.map((entry) => entry["id"]).sort();
const idsOf = (agents: AgentRecord[]): string[] => agents.map((agent) => agent.id).sort();

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

/** The real fs/promises, except that the next `failures` renames reject as a full disk would. */
function failingRenameFs(failures: number): AtomicWriteFs {
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
  };
}

describe("a fresh data directory", () => {
  it("loads as an empty registry and writes nothing", async () => {
    const dir = await dirs.make();
    const store = await openStore(dir);

    expect(await store.load()).toEqual([]);
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

  it("writes an updated agent in place of the old one", async () => {
    const { store, file } = await loadedStore();
    const agent = anAgent();
    await store.commit([{ put: agent }]);

    await store.commit([{ put: { ...agent, status: "offline", ollamaVersion: "0.2.0" } }]);

    const entries = await readAgentsFile(file);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ id: agent.id, status: "Offline", ollama_version: "0.2.0" });
  });

  it("removes a deleted agent from the file", async () => {
    const { store, file } = await loadedStore();
    const kept = anAgent();
    const removed = anAgent();
    await store.commit([{ put: kept }, { put: removed }]);

    await store.commit([{ delete: removed.id }]);

    expect(idsIn(await readAgentsFile(file))).toEqual([kept.id]);
  });

  it("writes what a later store loads back unchanged", async () => {
    const { dir, store } = await loadedStore();
    const agents = [anAgent({ labels: { gpu: "a100" } }), anAgent({ status: "offline", draining: true, ollamaVersion: "" })];
    await store.commit(agents.map((agent) => ({ put: agent })));
    await store.close();

    const reopened = await openStore(dir);

    expect((await reopened.load()).sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      [...agents].sort((a, b) => a.id.localeCompare(b.id)),
    );
  });

  it("counts the writes and the bytes written", async () => {
    const { store, file } = await loadedStore();

    await store.commit([{ put: anAgent() }]);
    await store.commit([{ put: anAgent() }]);

    expect(store.stats.writes).toBe(2);
    expect(store.stats.failures).toBe(0);
    expect(store.stats.bytesWritten).toBeGreaterThan((await fsp.stat(file)).size);
  });

  it("rejects with a StoreError once the store is closed", async () => {
    const { store, file } = await loadedStore();
    await store.close();

    const commit = store.commit([{ put: anAgent() }]);

    await expect(commit).rejects.toBeInstanceOf(StoreError);
    await expect(commit).rejects.toThrow(file);
  });
});

describe("close", () => {
  it("finishes a pending commit before it returns", async () => {
    const { store, file } = await loadedStore();
    const agent = anAgent();

    const commit = store.commit([{ put: agent }]);
    await store.close();

    expect(idsIn(await readAgentsFile(file))).toEqual([agent.id]);
    await expect(commit).resolves.toBeUndefined();
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
    await store.commit([]);
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
    expect(await readAgentsFile(file)).toHaveLength(200);
  });
});

describe("group commit", () => {
  it("lets 200 concurrent commits share a handful of writes and makes every change durable", async () => {
    const { store, file } = await loadedStore();
    const agents = Array.from({ length: 200 }, (_, i) => anAgent({ hostname: `gpu-node-${i}` }));

    await Promise.all(agents.map((agent) => store.commit([{ put: agent }])));

    expect(store.stats.writes).toBeLessThanOrEqual(5);
    expect(idsIn(await readAgentsFile(file))).toEqual(idsOf(agents));
  });

  it("gathers the commits that arrive during a write into the next single write", async () => {
    const dir = await dirs.make();
    const renameReached = deferred();
    const renameAllowed = deferred();
    let gated = true;
    const store = await openStore(dir, {
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

    expect(store.stats.writes).toBe(2);
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

  it("rejects every commit that shared the write", async () => {
    const { store } = await loadedStore({ fs: failingRenameFs(1) });

    const results = await Promise.allSettled([store.commit([{ put: anAgent() }]), store.commit([{ put: anAgent() }])]);

    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
  });

  it("is counted in stats.failures, not in stats.writes", async () => {
    const { store } = await loadedStore({ fs: failingRenameFs(1) });

    await store.commit([{ put: anAgent() }]).catch(() => undefined);

    expect(store.stats).toEqual({ writes: 0, failures: 1, bytesWritten: 0 });
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

  it("is written by the next commit that succeeds", async () => {
    const { store, file } = await loadedStore({ fs: failingRenameFs(1) });
    const lost = anAgent({ hostname: "first" });
    const next = anAgent({ hostname: "second" });
    await expect(store.commit([{ put: lost }])).rejects.toBeInstanceOf(StoreError);

    await store.commit([{ put: next }]);

    expect(idsIn(await readAgentsFile(file))).toEqual([lost.id, next.id].sort());
    expect(store.stats).toMatchObject({ writes: 1, failures: 1 });
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
  const validEntry = {
    id: "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48",
    hostname: "gpu-node-01",
    ip_address: "10.0.0.11",
    port: 11434,
    ollama_version: "0.1.32",
    status: "Online",
    last_heartbeat: "2024-05-01T12:00:00.123456789Z",
    registered_at: "2024-04-30T08:15:42Z",
  };
  const corruptFiles: Array<[string, string, RegExp]> = [
    ["truncated JSON", JSON.stringify([validEntry, validEntry]).slice(0, 150), /not valid JSON/],
    ["an empty file", "", /the file is empty/],
    ["an object instead of an array", JSON.stringify({ agents: [validEntry] }), /expected a JSON array of agents/],
    ["a port of the wrong type", JSON.stringify([{ ...validEntry, port: "abc" }]), /agent #1 \(id [^)]+\): "port" must be a number/],
    ["a status of the wrong type", JSON.stringify([{ ...validEntry, status: true }]), /agent #1 \(id [^)]+\): "status" must be a string/],
    ["duplicate ids", JSON.stringify([validEntry, { ...validEntry, hostname: "twin" }]), /agent #2: id 9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48 appears more than once/],
    ["an invalid UUID", JSON.stringify([{ ...validEntry, id: "gpu-node-01" }]), /agent #1: "id" must be a UUID, got "gpu-node-01"/],
  ];

  it.each(corruptFiles)("holding %s is rejected with the path and the problem, and left byte for byte", async (_what, content, problem) => {
    const dir = await dirs.make();
    const file = join(dir, AGENTS_FILE);
    await fsp.writeFile(file, content);
    const past = new Date("2024-01-01T00:00:00Z");
    await fsp.utimes(file, past, past);
    const before = await fsp.readFile(file);
    const store = await openStore(dir);

    const load = store.load();

    await expect(load).rejects.toBeInstanceOf(StoreError);
    await expect(load).rejects.toThrow(file);
    await expect(load).rejects.toThrow(problem);
    await store.close();
    expect(await fsp.readFile(file)).toEqual(before);
    expect((await fsp.stat(file)).mtimeMs).toBe(past.getTime());
  });

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
    await fsp.writeFile(target, JSON.stringify([validEntry]));
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

  it("is rejected when agents.json is a directory, which is left alone", async () => {
    const dir = await dirs.make();
    const file = join(dir, AGENTS_FILE);
    await fsp.mkdir(file);
    await fsp.writeFile(join(file, "inside"), "keep me");
    const store = await openStore(dir);

    const load = store.load();

    await expect(load).rejects.toBeInstanceOf(StoreError);
    await expect(load).rejects.toThrow(`${file}: it is not a regular file`);
    await store.close();
    expect((await fsp.stat(file)).isDirectory()).toBe(true);
    expect(await fsp.readFile(join(file, "inside"), "utf8")).toBe("keep me");
  });
});

describe("a file the Rust prototype wrote", () => {
  it("loads as it is", async () => {
    const dir = await dirs.make();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, AGENTS_FILE));
    const store = await openStore(dir);

    const agents = await store.load();

    expect(agents.map((agent) => [agent.hostname, agent.status])).toEqual([
      ["gpu-node-01", "online"],
      ["gpu-node-02", "offline"],
      ["gpu-node-03", "online"],
    ]);
  });

  it("keeps its untouched agents and their unknown keys when one agent changes", async () => {
    const dir = await dirs.make();
    const file = join(dir, AGENTS_FILE);
    const prototype = JSON.parse(await fsp.readFile(PROTOTYPE_FILE, "utf8")) as Array<Record<string, unknown>>;
    await fsp.writeFile(file, JSON.stringify(prototype.map((entry) => ({ ...entry, gpu_model: "A100" }))));
    const store = await openStore(dir);
    const [first] = await store.load();

    await store.commit([{ put: { ...first!, status: "offline" } }]);

    const entries = await readAgentsFile(file);
    expect(entries).toHaveLength(3);
    expect(entries.map((entry) => entry["gpu_model"])).toEqual(["A100", "A100", "A100"]);
    expect(entries.find((entry) => entry["id"] === first!.id)).toMatchObject({ status: "Offline" });
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

    const agents = await store.load();

    expect(agents).toHaveLength(3);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("alone, without agents.json, load as an empty registry", async () => {
    const dir = await dirs.make();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, `${AGENTS_FILE}.tmp-123-1`));
    const store = await openStore(dir);

    expect(await store.load()).toEqual([]);
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

describe("the data directory lock", () => {
  /** A process that stays alive until killed. */
  async function liveProcess(): Promise<{ pid: number; kill(): Promise<void> }> {
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 60_000)"], { stdio: "ignore" });
    await once(child, "spawn");
    return {
      pid: child.pid!,
      async kill() {
        const exited = once(child, "exit");
        child.kill();
        await exited;
      },
    };
  }

  /** The pid of a process that has exited. */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    await once(child, "exit");
    return child.pid!;
  }

  it("is a file holding the server's pid while the store is open", async () => {
    const dir = await dirs.make();
    await openStore(dir);

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
  });

  it("makes a second store on the same directory in this process refuse to open", async () => {
    const dir = await dirs.make();
    await openStore(dir);

    const second = JsonFileStore.open(dir);

    await expect(second).rejects.toBeInstanceOf(StoreError);
    await expect(second).rejects.toThrow(`another agent-registry server (pid ${process.pid})`);
  });

  it("lets exactly one of two stores opening the same directory at once in this process win", async () => {
    const dir = await dirs.make();

    const results = await Promise.allSettled([JsonFileStore.open(dir), JsonFileStore.open(dir)]);

    for (const result of results) if (result.status === "fulfilled") stores.push(result.value);
    expect(results.map((result) => result.status).sort()).toEqual(["fulfilled", "rejected"]);
  });

  it("stays held by the first store after a second one was refused", async () => {
    const dir = await dirs.make();
    const first = await openStore(dir);
    await expect(JsonFileStore.open(dir)).rejects.toBeInstanceOf(StoreError);

    await first.load();
    await first.commit([{ put: anAgent() }]);

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
    await expect(JsonFileStore.open(dir)).rejects.toBeInstanceOf(StoreError);
  });

  it("is taken over when it holds this process's pid but this process does not hold it (a restarted container)", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, LOCK_FILE), `${process.pid}\n`);

    const store = await openStore(dir);

    expect(await store.load()).toEqual([]);
  });

  it("makes a store refuse to open while another live process holds it, naming that pid", async () => {
    const dir = await dirs.make();
    const other = await liveProcess();
    try {
      await fsp.writeFile(join(dir, LOCK_FILE), `${other.pid}\n`);

      const open = JsonFileStore.open(dir);

      await expect(open).rejects.toBeInstanceOf(StoreError);
      await expect(open).rejects.toThrow(`another agent-registry server (pid ${other.pid}) is using ${dir}`);
      expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${other.pid}\n`);
    } finally {
      await other.kill();
    }
  });

  it("is taken over when the process that holds it has exited", async () => {
    const dir = await dirs.make();
    const pid = await deadPid();
    await fsp.writeFile(join(dir, LOCK_FILE), `${pid}\n`);

    const store = await openStore(dir);

    expect(await store.load()).toEqual([]);
    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
  });

  it("is taken over when it holds no pid (a crash between creating and writing it)", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, LOCK_FILE), "");

    await openStore(dir);

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
  });

  it("is released by close, so the directory can be opened again", async () => {
    const dir = await dirs.make();
    const first = await JsonFileStore.open(dir);
    await first.close();

    expect(await fsp.readdir(dir)).not.toContain(LOCK_FILE);
    const second = await openStore(dir);
    expect(await second.load()).toEqual([]);
  });

  it("can be taken once the live process that refused it has gone", async () => {
    const dir = await dirs.make();
    const other = await liveProcess();
    await fsp.writeFile(join(dir, LOCK_FILE), `${other.pid}\n`);
    await expect(JsonFileStore.open(dir)).rejects.toBeInstanceOf(StoreError);

    await other.kill();

    await expect(openStore(dir)).resolves.toBeInstanceOf(JsonFileStore);
  });

  it("is not taken from a later store by closing an earlier one twice", async () => {
    const dir = await dirs.make();
    const first = await JsonFileStore.open(dir);
    await first.close();
    await openStore(dir);

    await first.close();

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
    await expect(JsonFileStore.open(dir)).rejects.toThrow("another agent-registry server");
  });

  it("refuses commits until the file was loaded, so a file that failed to load is never overwritten", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, "agents.json"), "{ not json");
    const store = await openStore(dir);
    await expect(store.load()).rejects.toBeInstanceOf(StoreError);
    await expect(store.commit([{ put: anAgent() }])).rejects.toThrow("refusing to overwrite");
    expect(await fsp.readFile(join(dir, "agents.json"), "utf8")).toBe("{ not json");
  });

  it("does not stop stores on different directories", async () => {
    const first = await openStore(await dirs.make());
    const second = await openStore(await dirs.make());
    await Promise.all([first.load(), second.load()]);

    await Promise.all([first.commit([{ put: anAgent() }]), second.commit([{ put: anAgent() }])]);

    expect([first.stats.writes, second.stats.writes]).toEqual([1, 1]);
  });
});

describe("recovery from a failing disk", () => {
  it("writes the pending state by itself once the disk works again, without a new commit", async () => {
    const { file, store } = await loadedStore({ fs: failingRenameFs(2) });
    const agent = anAgent();
    await expect(store.commit([{ put: agent }])).rejects.toBeInstanceOf(StoreError);
    // Retries back off (0.25 s, then 0.5 s); the second succeeds.
    await expect.poll(() => store.stats.writes, { timeout: 5000, interval: 50 }).toBe(1);
    expect(store.stats.failures).toBe(2);
    expect(idsIn(await readAgentsFile(file))).toEqual([agent.id]);
  });
});

describe("closing after a failed write", () => {
  it("makes one last try, so a shutdown writes what is pending", async () => {
    const { file, store } = await loadedStore({ fs: failingRenameFs(1) });
    const agent = anAgent();
    await expect(store.commit([{ put: agent }])).rejects.toBeInstanceOf(StoreError);
    await store.close();
    expect(idsIn(await readAgentsFile(file))).toEqual([agent.id]);
  });
});
