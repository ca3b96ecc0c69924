// One server per data directory: a lock file holding the owner's pid. It appears with its content at once
// (written beside it, then hard-linked into place, which fails if a lock exists), so no one ever reads an
// empty lock. A lock whose owner no longer runs (kill -9) is taken over, so a crash never blocks the
// restart; takeovers go through a second, exclusive file, so two starting servers cannot both take it.

import { link, open, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StoreError } from "../registry/store.js";

export const LOCK_FILE = "agents.json.lock";
const TAKEOVER_FILE = `${LOCK_FILE}.takeover`;
/** A takeover file older than this was left by a process that died while taking over. */
const TAKEOVER_STALE_MS = 10_000;

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
      // Remove the lock only while it is still ours.
      if ((await readOwner(path)) === process.pid) await rm(path, { force: true });
      heldByThisProcess.delete(key);
    },
  };
}

async function takeLockFile(path: string, dataDir: string): Promise<void> {
  if (await createLock(path)) return;
  const owner = await readOwner(path);
  if (owner !== undefined && owner !== process.pid && isRunning(owner)) throw anotherServer(owner, dataDir);
  // Stale (its owner is gone, or was an earlier process with our pid): take it over, one taker at a time.
  const takeover = join(dataDir, TAKEOVER_FILE);
  if (!(await createExclusive(takeover))) {
    throw new StoreError(`another agent-registry server is starting on ${dataDir} (it holds ${takeover}); try again`);
  }
  try {
    // Between our look and the takeover file, the lock may have changed hands: look again.
    const now = await readOwner(path);
    if (now !== owner && now !== undefined && isRunning(now)) throw anotherServer(now, dataDir);
    await rm(path, { force: true });
    if (!(await createLock(path))) throw new StoreError(`cannot take the lock file ${path}: another server took it first; try again`);
  } finally {
    await rm(takeover, { force: true });
  }
}

/** Creates the lock with our pid in it, atomically; false if a lock exists. */
async function createLock(path: string): Promise<boolean> {
  const temp = `${path}.${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    const file = await open(temp, "wx", 0o600);
    try {
      await file.writeFile(`${process.pid}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new StoreError(`cannot create the lock file ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    await rm(temp, { force: true });
  }
}

/** Creates `path` exclusively; false if it exists and is fresh (a stale one is removed and retried once). */
async function createExclusive(path: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await (await open(path, "wx", 0o600)).close();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new StoreError(`cannot create ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    const age = await stat(path).then(
      (info) => Date.now() - info.mtimeMs,
      () => Infinity, // gone meanwhile: try again
    );
    if (age < TAKEOVER_STALE_MS) return false;
    await rm(path, { force: true });
  }
  return false;
}

/** The pid in the lock file; undefined when there is none (no file, or no pid in it). */
async function readOwner(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    // Unreadable (another user's lock): held, as far as we can tell.
    throw new StoreError(`cannot read the lock file ${path}: ${(error as Error).message}; is another server running?`, {
      cause: error,
    });
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
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
