// The data directory lock (one server per data directory, whatever its store): taken over when stale,
// refused while held, in this process and across processes, where of servers starting at the same instant
// exactly one wins, whether the directory is fresh or holds a stale lock from a killed server.

import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import * as fsp from "node:fs/promises";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { StoreError } from "../../src/registry/store.js";
import { type DataDirLock, LOCK_FILE, lockDataDir } from "../../src/store/data-dir-lock.js";
import { TempDirs } from "./agent-records.js";

const run = promisify(execFile);
const LOCK_MODULE = fileURLToPath(new URL("../../dist/src/store/data-dir-lock.js", import.meta.url));
const dirs = new TempDirs();

const held: DataDirLock[] = [];

afterEach(async () => {
  for (const taken of held.splice(0)) await taken.release();
  await dirs.removeAll();
});

/** Takes the lock of `dir`, released after the test. */
async function lock(dir: string): Promise<DataDirLock> {
  const taken = await lockDataDir(dir);
  held.push(taken);
  return taken;
}

/** Starts `count` processes that each try to take the lock at the same moment; returns who won. */
async function race(dataDir: string, count: number): Promise<string[]> {
  // Each contender waits for a common start time, tries, reports, and holds a winning lock for a while.
  const startAt = Date.now() + 500;
  const script = `
    const { lockDataDir } = await import(${JSON.stringify(LOCK_MODULE)});
    await new Promise((r) => setTimeout(r, ${startAt} - Date.now()));
    try { await lockDataDir(${JSON.stringify(dataDir)}); console.log("won"); await new Promise((r) => setTimeout(r, 1000)); }
    catch (error) { console.log("lost: " + error.message); }`;
  const outcomes = await Promise.all(
    Array.from({ length: count }, () => run(process.execPath, ["--input-type=module", "-e", script]).then(({ stdout }) => stdout.trim())),
  );
  return outcomes;
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await once(child, "exit");
  return child.pid as number;
}

describe("the data directory lock, between processes", () => {
  it("lets exactly one of several servers starting at once take a fresh directory", async () => {
    const outcomes = await race(await dirs.make(), 6);
    expect(outcomes.filter((outcome) => outcome === "won")).toHaveLength(1);
  });

  it("lets exactly one of several servers take over a stale lock left by a killed server", async () => {
    for (let round = 0; round < 3; round++) {
      const dir = await dirs.make();
      await writeFile(join(dir, LOCK_FILE), `${await deadPid()}\n`);
      const outcomes = await race(dir, 6);
      expect(outcomes.filter((outcome) => outcome === "won")).toHaveLength(1);
    }
  });
});

describe("the data directory lock, in this process", () => {
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


  it("is a file holding the server's pid while it is held", async () => {
    const dir = await dirs.make();
    await lock(dir);

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
  });

  it("refuses a second taker in this process, naming this pid", async () => {
    const dir = await dirs.make();
    await lock(dir);

    const second = lockDataDir(dir);

    await expect(second).rejects.toBeInstanceOf(StoreError);
    await expect(second).rejects.toThrow(`another agent-registry server (pid ${process.pid})`);
  });

  it("lets exactly one of two takers at the same instant in this process win", async () => {
    const dir = await dirs.make();

    const results = await Promise.allSettled([lockDataDir(dir), lockDataDir(dir)]);

    for (const result of results) if (result.status === "fulfilled") held.push(result.value);
    expect(results.map((result) => result.status).sort()).toEqual(["fulfilled", "rejected"]);
  });

  it("stays held by the first taker after a second one was refused", async () => {
    const dir = await dirs.make();
    await lock(dir);
    await expect(lockDataDir(dir)).rejects.toBeInstanceOf(StoreError);

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
    await expect(lockDataDir(dir)).rejects.toBeInstanceOf(StoreError);
  });

  it("is taken over when it holds this process's pid but this process does not hold it (a restarted container)", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, LOCK_FILE), `${process.pid}\n`);

    await expect(lock(dir)).resolves.toMatchObject({ path: join(dir, LOCK_FILE) });
  });

  it("is refused while another live process holds it, naming that pid", async () => {
    const dir = await dirs.make();
    const other = await liveProcess();
    try {
      await fsp.writeFile(join(dir, LOCK_FILE), `${other.pid}\n`);

      const open = lockDataDir(dir);

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

    await lock(dir);

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
  });

  it("is taken over when it holds no pid (a crash between creating and writing it)", async () => {
    const dir = await dirs.make();
    await fsp.writeFile(join(dir, LOCK_FILE), "");

    await lock(dir);

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
  });

  it("is released by release(), so the directory can be taken again", async () => {
    const dir = await dirs.make();
    const first = await lockDataDir(dir);
    await first.release();

    expect(await fsp.readdir(dir)).not.toContain(LOCK_FILE);
    await expect(lock(dir)).resolves.toMatchObject({ path: join(dir, LOCK_FILE) });
  });

  it("can be taken once the live process that refused it has gone", async () => {
    const dir = await dirs.make();
    const other = await liveProcess();
    await fsp.writeFile(join(dir, LOCK_FILE), `${other.pid}\n`);
    await expect(lockDataDir(dir)).rejects.toBeInstanceOf(StoreError);

    await other.kill();

    await expect(lock(dir)).resolves.toMatchObject({ path: join(dir, LOCK_FILE) });
  });

  it("is not taken from a later holder by releasing an earlier one twice", async () => {
    const dir = await dirs.make();
    const first = await lockDataDir(dir);
    await first.release();
    await lock(dir);

    await first.release();

    expect(await fsp.readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
    await expect(lockDataDir(dir)).rejects.toThrow("another agent-registry server");
  });
});
