// The data directory lock across processes: of servers starting at the same instant, exactly one wins,
// whether the directory is fresh or holds a stale lock from a killed server.

import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { LOCK_FILE } from "../../src/store/data-dir-lock.js";
import { TempDirs } from "./agent-records.js";

const run = promisify(execFile);
const LOCK_MODULE = fileURLToPath(new URL("../../dist/src/store/data-dir-lock.js", import.meta.url));
const dirs = new TempDirs();

afterEach(async () => {
  await dirs.removeAll();
});

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
