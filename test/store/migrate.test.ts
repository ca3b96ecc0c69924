// agent-registry migrate: every agent copied between agents.json and registry.db with its id, revision,
// secret's hash, timestamps and unknown keys; a target that holds agents, a running server and an empty
// source refused, with what to do; the command line as a user runs it.

import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { hashSecret } from "../../src/registry/agent-secret.js";
import { StoreError } from "../../src/registry/store.js";
import { lockDataDir } from "../../src/store/data-dir-lock.js";
import { AGENTS_FILE, JsonFileStore } from "../../src/store/json-file-store.js";
import { migrateStore } from "../../src/store/migrate.js";
import { REGISTRY_DB, SqliteStore } from "../../src/store/sqlite-store.js";
import { CLI } from "../support/server-process.js";
import { PROTOTYPE_FILE, TempDirs, anAgent } from "./agent-records.js";

const run = promisify(execFile);
const dirs = new TempDirs();

afterEach(async () => {
  await dirs.removeAll();
});

async function loaded<T extends JsonFileStore | SqliteStore>(open: Promise<T>): Promise<T> {
  const store = await open;
  await store.load();
  return store;
}

async function failure(migration: Promise<unknown>): Promise<StoreError> {
  const error = await migration.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

describe("migrateStore", () => {
  it("copies agents.json into registry.db and back with ids, revisions, secrets' hashes, times and unknown keys", async () => {
    const dir = await dirs.make();
    const prototype = JSON.parse(await fsp.readFile(PROTOTYPE_FILE, "utf8")) as Array<Record<string, unknown>>;
    await fsp.writeFile(join(dir, AGENTS_FILE), JSON.stringify(prototype.map((row) => ({ ...row, gpu_model: "A100" }))));
    const json = await loaded(JsonFileStore.open(dir));
    const [first] = json.exportAgents().agents;
    await json.commit([{ put: { ...first!.record, labels: { zone: "eu" }, draining: true, secretHash: hashSecret("s") }, expectedRevision: 1 }]);
    const original = json.exportAgents();
    await json.close();

    const there = await migrateStore(dir, "json", "sqlite", { force: false });
    expect(there).toEqual({ from: join(dir, AGENTS_FILE), to: join(dir, REGISTRY_DB), agents: 3, revision: 2 });
    const sqlite = await loaded(SqliteStore.open(dir));
    expect(sqlite.exportAgents()).toEqual(original);
    await sqlite.close();

    await fsp.rm(join(dir, AGENTS_FILE));
    await migrateStore(dir, "sqlite", "json", { force: false });
    const back = await loaded(JsonFileStore.open(dir));
    expect(back.exportAgents()).toEqual(original);
    await back.close();
    const written = JSON.parse(await fsp.readFile(join(dir, AGENTS_FILE), "utf8")) as Array<Record<string, unknown>>;
    expect(written.map((row) => row["gpu_model"])).toEqual(["A100", "A100", "A100"]);
  });

  it("leaves the source as it was", async () => {
    const dir = await dirs.make();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, AGENTS_FILE));
    const before = await fsp.readFile(join(dir, AGENTS_FILE));

    await migrateStore(dir, "json", "sqlite", { force: false });

    expect(await fsp.readFile(join(dir, AGENTS_FILE))).toEqual(before);
  });

  it("refuses a target that holds agents, saying how many and how to replace them, and changes nothing; --force replaces them", async () => {
    const dir = await dirs.make();
    const sqlite = await loaded(SqliteStore.open(dir));
    const held = anAgent({ hostname: "already-here" });
    await sqlite.commit([{ put: held }]);
    await sqlite.close();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, AGENTS_FILE));

    const refused = await failure(migrateStore(dir, "json", "sqlite", { force: false }));
    expect(refused.message).toBe(
      `${join(dir, REGISTRY_DB)} already holds 1 agent; refusing to replace them (pass --force to replace them with the 3 of ${join(dir, AGENTS_FILE)})`,
    );
    const kept = await loaded(SqliteStore.open(dir));
    expect(kept.exportAgents().agents.map((agent) => agent.record.hostname)).toEqual(["already-here"]);
    await kept.close();

    await migrateStore(dir, "json", "sqlite", { force: true });
    const replaced = await loaded(SqliteStore.open(dir));
    expect(replaced.exportAgents().agents.map((agent) => agent.record.hostname)).toEqual(["gpu-node-01", "gpu-node-02", "gpu-node-03"]);
    await replaced.close();
  });

  it("refuses while a server holds the data directory, naming it", async () => {
    const dir = await dirs.make();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, AGENTS_FILE));
    const server = await lockDataDir(dir);
    try {
      const refused = await failure(migrateStore(dir, "json", "sqlite", { force: false }));
      expect(refused.message).toContain(`cannot migrate while a server uses the data directory: another agent-registry server (pid ${process.pid}) is using ${dir}`);
    } finally {
      await server.release();
    }
    expect(await fsp.readdir(dir)).not.toContain(REGISTRY_DB);
  });

  it("refuses a source with nothing in it, asking whether the data directory is right, and creates no target", async () => {
    const dir = await dirs.make();

    const refused = await failure(migrateStore(dir, "json", "sqlite", { force: false }));

    expect(refused.message).toBe(`${join(dir, AGENTS_FILE)} holds no agents: nothing to migrate (is --data-dir ${dir} the right directory?)`);
    expect(await fsp.readdir(dir)).toEqual([]);
  });
});

describe("agent-registry migrate", () => {
  it("says what it copied where, and how to start the server on it", async () => {
    const dir = await dirs.make();
    await fsp.copyFile(PROTOTYPE_FILE, join(dir, AGENTS_FILE));

    const { stdout } = await run(process.execPath, [CLI, "migrate", "--from", "json", "--to", "sqlite", "--data-dir", dir]);

    expect(stdout).toBe(
      `migrated 3 agents (revision 1) from ${join(dir, AGENTS_FILE)} to ${join(dir, REGISTRY_DB)}; ${join(dir, AGENTS_FILE)} is left as it was. ` +
        "Start the server with REGISTRY_STORE=sqlite (or --store sqlite) to use it\n",
    );
  });

  it.each([
    { args: ["--to", "sqlite"], message: "--from is required: say which store to copy from and to, e.g. --from json --to sqlite" },
    { args: ["--from", "json", "--to", "json"], message: "--from and --to are both json: give two different stores (json, sqlite)" },
    { args: ["--from", "etcd", "--to", "json"], message: '--from must be json or sqlite, got "etcd"' },
  ])("refuses $args with exit code 1 and one line", async ({ args, message }) => {
    const dir = await dirs.make();

    const result = await run(process.execPath, [CLI, "migrate", ...args, "--data-dir", dir]).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => error,
    );

    expect(result).toMatchObject({ code: 1, stderr: `agent-registry: ${message}\n` });
  });
});
