// One server per data directory: a lock file holding the owner's pid, taken with O_EXCL. A lock left by a
// process that no longer runs (kill -9) is taken over, so a crash never blocks the restart.

import { open, readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StoreError } from "../registry/store.js";

export const LOCK_FILE = "agents.json.lock";

// The pid in the file cannot tell this process's own lock from a stale one left by an earlier process that
// had the same pid (pid 1 in a restarted container), so the process remembers the locks it holds or is
// taking: a second store on the same directory in this process is refused, not let in.
const heldByThisProcess = new Set<string>();

export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  const key = resolve(path);
  if (heldByThisProcess.has(key)) throw anotherServer(process.pid, dataDir);
  heldByThisProcess.add(key);
  try {
    await takeLockFile(path, dataDir);
  } catch (error) {
    heldByThisProcess.delete(key);
    throw error;
  }
  let released = false;
  return {
    path,
    release: async () => {
      if (released) return;
      released = true;
      await rm(path, { force: true });
      heldByThisProcess.delete(key);
    },
  };
}

async function takeLockFile(path: string, dataDir: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, "wx", 0o600);
      try {
        await file.writeFile(`${process.pid}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new StoreError(`cannot create the lock file ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    // A lock file that vanished or holds no pid meanwhile is stale like one whose owner is gone.
    const owner = Number.parseInt((await readFile(path, "utf8").catch(() => "")).trim(), 10);
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isRunning(owner)) {
      throw anotherServer(owner, dataDir);
    }
    // Stale: its owner is gone (or was an earlier process with our pid). Remove it and try once more.
    await rm(path, { force: true });
  }
  throw new StoreError(`cannot take the lock file ${path}: another server is starting on ${dataDir}; try again`);
}

function anotherServer(pid: number, dataDir: string): StoreError {
  return new StoreError(
    `another agent-registry server (pid ${pid}) is using ${dataDir}; stop it, or give this one its own REGISTRY_DATA_DIR`,
  );
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
