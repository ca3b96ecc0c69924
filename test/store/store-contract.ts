// The Store port's contract, one suite run against every store (json, sqlite, the in-memory double): what
// the registry relies on, whatever keeps its agents. Revisions, conditional commits that apply whole or
// not at all, watch from a revision, group commit, lazy beat times; and for the stores on disk, kill -9 at
// any instant, files that cannot be used (left byte for byte), the data directory's lock, and a disk that
// refuses writes for a while.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { v4 } from "uuid";
import { afterEach, describe, expect, it } from "vitest";
import type { StoreKind } from "../../src/config/index.js";
import type { AgentId } from "../../src/registry/agent-id.js";
import { ABSENT, type Commit, type Store, StoreConflict, StoreError, type StoreObserver } from "../../src/registry/store.js";
import { Tmpfs, canMount } from "../support/tmpfs.js";
import { TempDirs, WriteCounter, anAgent, anInventory } from "./agent-records.js";

export interface StoreUnderTest {
  readonly name: string;
  /** A new, empty place for a store: a data directory, or a key for the in-memory store. */
  place(): Promise<string>;
  /** Opens (and locks) the store at `place`; load() is the caller's. */
  open(place: string, observer?: StoreObserver): Promise<Store>;
  /** Stores on disk: the kind that `openStore` opens, and the file it keeps its agents in. */
  readonly disk?: {
    readonly kind: StoreKind;
    file(place: string): string;
    /**
     * Whether a running store's file system can be remounted read-only: not SQLite's, which keeps its files
     * open for writing (Linux refuses such a remount); a full disk is its way of refusing writes.
     */
    readonly remountable: boolean;
    /** Contents its file must never hold, and what the refusal names. */
    readonly unusable: ReadonlyArray<{ readonly what: string; readonly content: Buffer | string; readonly problem: RegExp }>;
  };
  /** The in-memory store: writes fail until the returned function is called. */
  failWrites?(store: Store): () => void;
}

/** Data directories for the stores under test; removed after each test. */
export const placeDirs = new TempDirs();
const dirs = placeDirs;
const opened: Store[] = [];
const mounts: Tmpfs[] = [];

const id = (): AgentId => v4() as AgentId;

async function fresh(subject: StoreUnderTest, observer?: StoreObserver): Promise<{ place: string; store: Store }> {
  const place = await subject.place();
  const store = await subject.open(place, observer);
  opened.push(store);
  await store.load();
  return { place, store };
}

async function reopen(subject: StoreUnderTest, place: string, store: Store): Promise<Store> {
  await store.close();
  const again = await subject.open(place);
  opened.push(again);
  return again;
}

async function conflictOf(commit: Promise<unknown>): Promise<StoreConflict> {
  const error = await commit.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(StoreConflict);
  return error as StoreConflict;
}

export function describeStoreContract(subject: StoreUnderTest): void {
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    for (const mount of mounts.splice(0)) await mount.unmount();
    await dirs.removeAll();
  });

  describe(`the ${subject.name} store`, () => {
    it("loads a new place as no agents at revision 0", async () => {
      const store = await subject.open(await subject.place());
      opened.push(store);
      expect(await store.load()).toEqual({ agents: [], revision: 0 });
    });

    it("gives each commit the next revision, and every record it changes that revision", async () => {
      const { store } = await fresh(subject);
      const first = anAgent();
      const second = anAgent();

      const one = await store.commit([{ put: first }]);
      const two = await store.commit([{ put: second }, { put: { ...first, hostname: "renamed" } }]);

      expect(one.revision).toBe(1);
      expect(two).toEqual({
        revision: 2,
        changes: [
          { id: second.id, record: second },
          { id: first.id, record: { ...first, hostname: "renamed" } },
        ],
      });
    });

    it("keeps what it acknowledged across a close and a reopen, at the revisions it was at", async () => {
      const { place, store } = await fresh(subject);
      const kept = anAgent({ labels: { gpu: "a100" }, secretHash: undefined });
      const changed = anAgent({ status: "offline", draining: true, ollamaVersion: "" });
      const removed = anAgent();
      await store.commit([{ put: kept }, { put: changed }, { put: removed }]);
      await store.commit([{ put: { ...changed, hostname: "gpu-node-09" } }]);
      await store.commit([{ delete: removed.id }]);

      const again = await reopen(subject, place, store);
      const snapshot = await again.load();

      expect(snapshot.agents).toHaveLength(2);
      expect(snapshot.agents).toEqual(
        expect.arrayContaining([
          { record: kept, revision: 1 },
          { record: { ...changed, hostname: "gpu-node-09" }, revision: 2 },
        ]),
      );
      // At least the revision of every record it holds (agents.json cannot say that a delete came later).
      expect(snapshot.revision).toBeGreaterThanOrEqual(2);
      const next = await again.commit([{ put: { ...changed, status: "online" }, expectedRevision: 2 }]);
      expect(next.revision).toBe(snapshot.revision + 1);
    });

    it("keeps a node's inventory (GPUs with [N/A] figures, models loaded or not) across a reopen, and never its reachability", async () => {
      const { place, store } = await fresh(subject);
      const reported = anAgent({ inventory: anInventory(), inventoryUpdatedAt: Date.parse("2024-05-01T12:00:01.250Z") });
      const bare = anAgent();
      await store.commit([{ put: { ...reported, unreachable: "10.0.0.11:11434: connect ECONNREFUSED" } }, { put: bare }]);

      const snapshot = await (await reopen(subject, place, store)).load();

      expect(snapshot.agents).toEqual(
        expect.arrayContaining([
          { record: reported, revision: 1 },
          { record: bare, revision: 1 },
        ]),
      );
    });

    it("refuses to create an agent that exists, naming it and both revisions, and keeps nothing of that commit", async () => {
      const { store } = await fresh(subject);
      const agent = anAgent();
      await store.commit([{ put: agent, expectedRevision: ABSENT }]);
      const bystander = anAgent();

      const conflict = await conflictOf(
        store.commit([{ put: bystander }, { put: { ...agent, hostname: "impostor" }, expectedRevision: ABSENT }]),
      );

      expect(conflict).toMatchObject({ id: agent.id, expectedRevision: ABSENT, actualRevision: 1 });
      expect(conflict.message).toContain(agent.id);
      const next = await store.commit([{ put: anAgent() }]);
      expect(next.revision).toBe(2);
      const seen: Commit[] = [];
      store.watch(0, (commit) => seen.push(commit));
      expect(seen.flatMap((commit) => commit.changes.map((change) => change.record?.hostname))).not.toContain("impostor");
      expect(seen.flatMap((commit) => commit.changes.map((change) => change.id))).not.toContain(bystander.id);
    });

    it("refuses a change made on a stale revision, and takes it on the current one", async () => {
      const { store } = await fresh(subject);
      const agent = anAgent();
      await store.commit([{ put: agent }]);
      await store.commit([{ put: { ...agent, status: "offline" } }]);

      const conflict = await conflictOf(store.commit([{ put: { ...agent, hostname: "late" }, expectedRevision: 1 }]));
      const taken = await store.commit([{ put: { ...agent, hostname: "current" }, expectedRevision: 2 }]);

      expect(conflict).toMatchObject({ expectedRevision: 1, actualRevision: 2 });
      expect(taken.revision).toBe(3);
    });

    it("deletes an agent only at the revision it expected", async () => {
      const { place, store } = await fresh(subject);
      const agent = anAgent();
      await store.commit([{ put: agent }]);

      await conflictOf(store.commit([{ delete: agent.id, expectedRevision: 7 }]));
      await conflictOf(store.commit([{ delete: id(), expectedRevision: 1 }]));
      await store.commit([{ delete: agent.id, expectedRevision: 1 }]);

      const again = await reopen(subject, place, store);
      expect((await again.load()).agents).toEqual([]);
    });

    it("feeds each commit to its watchers before the commit resolves", async () => {
      const { store } = await fresh(subject);
      const seen: number[] = [];
      store.watch(0, (commit) => seen.push(commit.revision));

      const commit = await store.commit([{ put: anAgent() }]);

      expect(seen).toEqual([commit.revision]);
    });

    it("replays to a watcher the commits after the revision it asks for, in order, then every new one", async () => {
      const { store } = await fresh(subject);
      for (let i = 0; i < 3; i++) await store.commit([{ put: anAgent({ hostname: `gpu-${i}` }) }]);
      const seen: Array<[number, string | undefined]> = [];

      const unwatch = store.watch(1, (commit) => seen.push([commit.revision, commit.changes[0]?.record?.hostname]));
      await store.commit([{ put: anAgent({ hostname: "gpu-3" }) }]);
      unwatch();
      await store.commit([{ put: anAgent({ hostname: "gpu-4" }) }]);

      expect(seen).toEqual([
        [2, "gpu-1"],
        [3, "gpu-2"],
        [4, "gpu-3"],
      ]);
    });

    it("refuses to watch from a revision whose commits it no longer holds, naming it", async () => {
      const { place, store } = await fresh(subject);
      await store.commit([{ put: anAgent() }]);
      await store.commit([{ put: anAgent() }]);
      const again = await reopen(subject, place, store);
      await again.load();

      expect(() => again.watch(0, () => undefined)).toThrow(StoreError);
      expect(() => again.watch(0, () => undefined)).toThrow(/revision 2 only.*load the store again/);
      expect(() => again.watch(2, () => undefined)).not.toThrow();
    });

    it("lets 200 concurrent commits share a handful of writes, each with its own revision", async () => {
      const writes = new WriteCounter();
      const { place, store } = await fresh(subject, writes);
      const agents = Array.from({ length: 200 }, (_, i) => anAgent({ hostname: `gpu-${i}` }));

      const commits = await Promise.all(agents.map((agent) => store.commit([{ put: agent, expectedRevision: ABSENT }])));

      expect(new Set(commits.map((commit) => commit.revision)).size).toBe(200);
      expect(writes.ok).toBeGreaterThan(0);
      expect(writes.ok).toBeLessThanOrEqual(5);
      const again = await reopen(subject, place, store);
      expect((await again.load()).agents.map((agent) => agent.record.id).sort()).toEqual(agents.map((agent) => agent.id).sort());
    });

    it("commits a change of the stream's presence alone without writing, and never keeps it across a reopen", async () => {
      const writes = new WriteCounter();
      const { place, store } = await fresh(subject, writes);
      const agent = anAgent();
      await store.commit([{ put: agent }]);
      const before = writes.ok;

      const connected = await store.commit([{ put: { ...agent, streamConnected: true }, expectedRevision: 1 }]);

      expect(connected.revision).toBe(2);
      expect(connected.changes[0]?.record?.streamConnected).toBe(true);
      expect(writes.ok).toBe(before);
      const again = await reopen(subject, place, store);
      expect((await again.load()).agents.map((stored) => stored.record.streamConnected)).toEqual([false]);
    });

    it("keeps beat times it was given lazily, without a new revision, once it has closed", async () => {
      const { place, store } = await fresh(subject);
      const agent = anAgent();
      await store.commit([{ put: agent }]);

      store.saveBeats(new Map([[agent.id, agent.lastHeartbeat + 45_000]]));
      const again = await reopen(subject, place, store);

      expect(await again.load()).toEqual({ agents: [{ record: { ...agent, lastHeartbeat: agent.lastHeartbeat + 45_000 }, revision: 1 }], revision: 1 });
    });

    it("refuses commits once closed, with a StoreError naming where it keeps its data", async () => {
      const { store } = await fresh(subject);
      await store.close();

      const commit = store.commit([{ put: anAgent() }]);

      await expect(commit).rejects.toBeInstanceOf(StoreError);
      await expect(commit).rejects.toThrow(store.location);
    });

    const failWrites = subject.failWrites;
    if (failWrites !== undefined) {
      it("answers commits with a StoreError naming it while writes fail, keeps nothing of them, and recovers by itself", async () => {
        const writes = new WriteCounter();
        const { store } = await fresh(subject, writes);
        const kept = anAgent();
        await store.commit([{ put: kept }]);
        const restore = failWrites(store);

        const refused = store.commit([{ put: anAgent() }, { put: { ...kept, hostname: "lost" } }]);

        await expect(refused).rejects.toBeInstanceOf(StoreError);
        await expect(refused).rejects.toThrow(store.location);
        restore();
        // No new commit: the store writes again by itself and reports that it works.
        await expect.poll(() => writes.lastOk, { timeout: 5000, interval: 20 }).toBe(true);
        const next = await store.commit([{ put: anAgent() }]);
        expect(next.revision).toBe(2);
      });
    }

    const disk = subject.disk;
    if (disk === undefined) return;

    it("keeps every commit it acknowledged through kill -9 of the process making them, at any instant", async () => {
      const place = await subject.place();
      const acknowledged = new Set<string>();
      for (let round = 0; round < 5; round++) {
        const writer = await startWriter(disk.kind, place);
        const target = acknowledged.size + 20 + Math.floor(Math.random() * 150);
        await writer.until((acked) => {
          for (const agentId of acked) acknowledged.add(agentId);
          return acknowledged.size >= target;
        });
        writer.child.kill("SIGKILL");
        await once(writer.child, "exit");
        for (const agentId of writer.acked()) acknowledged.add(agentId);
      }

      const store = await subject.open(place);
      opened.push(store);
      const stored = new Set((await store.load()).agents.map((agent) => agent.record.id as string));
      const lost = [...acknowledged].filter((agentId) => !stored.has(agentId));
      expect(acknowledged.size).toBeGreaterThan(100);
      expect(lost).toEqual([]);
    });

    it.each(disk.unusable)("refuses to load a file holding $what, naming the file and the problem, and leaves it byte for byte", async ({ content, problem }) => {
      const place = await subject.place();
      const file = disk.file(place);
      await fsp.writeFile(file, content);
      const past = new Date("2024-01-01T00:00:00Z");
      await fsp.utimes(file, past, past);
      const before = await fsp.readFile(file);
      const store = await subject.open(place);
      opened.push(store);

      const load = store.load();

      await expect(load).rejects.toBeInstanceOf(StoreError);
      await expect(load).rejects.toThrow(file);
      await expect(load).rejects.toThrow(problem);
      await expect(load).rejects.toThrow(/left the file untouched/);
      await expect(store.commit([{ put: anAgent() }])).rejects.toThrow(/was not loaded; refusing/);
      await store.close();
      expect(await fsp.readFile(file)).toEqual(before);
      expect((await fsp.stat(file)).mtimeMs).toBe(past.getTime());
    });

    it("refuses to load when its file is a directory (unreadable as a file), and leaves the directory alone", async () => {
      const place = await subject.place();
      const file = disk.file(place);
      await fsp.mkdir(file);
      await fsp.writeFile(`${file}/inside`, "keep me");
      const store = await subject.open(place);
      opened.push(store);

      await expect(store.load()).rejects.toThrow(`${file}: it is not a regular file`);
      await store.close();
      expect(await fsp.readFile(`${file}/inside`, "utf8")).toBe("keep me");
    });

    it("refuses a second store on the same data directory, naming the server that holds it, of either kind", async () => {
      const { place } = await fresh(subject);
      const other: StoreKind = disk.kind === "json" ? "sqlite" : "json";

      await expect(subject.open(place)).rejects.toThrow(`another agent-registry server (pid ${process.pid}) is using ${place}`);
      const { openStore } = await import("../../src/store/open-store.js");
      await expect(openStore(other, place)).rejects.toThrow(`another agent-registry server (pid ${process.pid})`);
    });

    describe.skipIf(!canMount)("on a disk that refuses writes (a tmpfs)", () => {
      async function onTmpfs(sizeKb: number): Promise<{ mount: Tmpfs; store: Store; writes: WriteCounter }> {
        const mount = await Tmpfs.mount(sizeKb);
        mounts.push(mount);
        const writes = new WriteCounter();
        const store = await subject.open(mount.dir, writes);
        opened.push(store);
        await store.load();
        return { mount, store, writes };
      }

      it.runIf(disk.remountable)("answers StoreErrors while the directory is read-only, keeps nothing, and writes again by itself", async () => {
        const { mount, store, writes } = await onTmpfs(1024);
        const kept = anAgent();
        await store.commit([{ put: kept }]);
        mount.readOnly();

        const refused = store.commit([{ put: anAgent() }]);

        await expect(refused).rejects.toBeInstanceOf(StoreError);
        await expect(refused).rejects.toThrow(store.location);
        await expect(refused).rejects.toThrow(/read-only|readonly/i);
        mount.writable();
        await expect.poll(() => writes.lastOk, { timeout: 10_000, interval: 50 }).toBe(true);
        const again = await reopen(subject, mount.dir, store);
        expect((await again.load()).agents.map((agent) => agent.record.id)).toEqual([kept.id]);
      });

      it("answers StoreErrors on a full disk, keeps the last good state, and writes again by itself once space is freed", async () => {
        const { mount, store, writes } = await onTmpfs(512);
        const kept = anAgent();
        await store.commit([{ put: kept }]);
        const filler = mount.fill();

        const refused = store.commit([{ put: anAgent({ labels: { padding: "x".repeat(200) } }) }]);

        await expect(refused).rejects.toBeInstanceOf(StoreError);
        await expect(refused).rejects.toThrow(/no space left|disk is full/i);
        await fsp.rm(filler);
        await expect.poll(() => writes.lastOk, { timeout: 10_000, interval: 50 }).toBe(true);
        const again = await reopen(subject, mount.dir, store);
        expect((await again.load()).agents.map((agent) => agent.record.id)).toEqual([kept.id]);
      });
    });
  });
}

/** A child process committing new agents as fast as it can, 20 at a time, printing each id once acknowledged. */
async function startWriter(kind: StoreKind, dataDir: string): Promise<{
  child: ChildProcess;
  acked(): string[];
  until(done: (acked: readonly string[]) => boolean): Promise<void>;
}> {
  const openStore = fileURLToPath(new URL("../../dist/src/store/open-store.js", import.meta.url));
  const script = `
    import { openStore } from ${JSON.stringify(openStore)};
    import { randomUUID } from "node:crypto";
    const store = await openStore(${JSON.stringify(kind)}, ${JSON.stringify(dataDir)});
    await store.load();
    const record = (id) => ({ id, hostname: "gpu-" + id.slice(0, 8), ipAddress: "10.0.0.1", port: 11434, ollamaVersion: "0.5.7",
      status: "online", lastHeartbeat: Date.now(), registeredAt: Date.now(), labels: {}, draining: false, streamConnected: false });
    const writer = async () => {
      for (;;) {
        const id = randomUUID();
        await store.commit([{ put: record(id), expectedRevision: 0 }]);
        process.stdout.write(id + "\\n");
      }
    };
    await Promise.all(Array.from({ length: 20 }, writer));
  `;
  const file = join(await dirs.make(), "writer.mjs");
  await fsp.writeFile(file, script);
  const child = spawn(process.execPath, [file], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let errors = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  // Only whole lines: the last one may be cut off by the kill.
  const acked = (): string[] => output.split("\n").slice(0, -1);
  return {
    child,
    acked,
    until: (done) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (done(acked())) {
            child.stdout?.off("data", check);
            resolve();
          }
        };
        child.stdout?.on("data", check);
        child.once("exit", (code) => reject(new Error(`the writer exited (${code}) before it was killed: ${errors}`)));
      }),
  };
}
