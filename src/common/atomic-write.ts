// Replaces a file so that a reader or a crash at any instant sees either the old or the new content:
// write a temp file in the same directory, fsync it, rename it over the target, fsync the directory.

import * as fsp from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** The file operations the protocol uses; tests wrap the real ones to record the order of calls. */
export interface AtomicWriteFs {
  open: typeof fsp.open;
  rename: typeof fsp.rename;
  rm: typeof fsp.rm;
}

export const TEMP_MARKER = ".tmp-";

let sequence = 0;

export async function writeFileAtomic(
  path: string,
  data: string,
  options: { mode?: number; fs?: AtomicWriteFs } = {},
): Promise<void> {
  const fs = options.fs ?? fsp;
  const temp = join(dirname(path), `${basename(path)}${TEMP_MARKER}${process.pid}-${++sequence}`);
  try {
    const file = await fs.open(temp, "wx", options.mode ?? 0o600);
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await fs.rename(temp, path);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  // The rename is durable only once the directory entry is.
  await syncDirectory(dirname(path), fs);
}

/** Makes the entries of `dir` (a rename into it) durable. */
export async function syncDirectory(dir: string, fs: Pick<AtomicWriteFs, "open"> = fsp): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
