import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type AtomicWriteFs, writeFileAtomic } from "../../src/common/atomic-write.js";
import { TempDirs } from "../store/agent-records.js";

const dirs = new TempDirs();

afterEach(async () => {
  await dirs.removeAll();
});

/** The real fs/promises, except that syncing the temp file fails as a dying disk would. */
const failingSyncFs: AtomicWriteFs = {
  rename: fsp.rename,
  rm: fsp.rm,
  open: (async (path: string, flags?: string, mode?: number) => {
    const handle = await fsp.open(path, flags, mode);
    if (flags !== "wx") return handle;
    const failing: Pick<FileHandle, "writeFile" | "sync" | "close"> = {
      writeFile: (data, options) => handle.writeFile(data, options),
      sync: () => Promise.reject(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" })),
      close: () => handle.close(),
    };
    return failing as FileHandle;
  }) as typeof fsp.open,
};

describe("writeFileAtomic", () => {
  it("creates the file with the given content", async () => {
    const file = join(await dirs.make(), "state.json");

    await writeFileAtomic(file, "[1]\n");

    expect(await fsp.readFile(file, "utf8")).toBe("[1]\n");
  });

  it("replaces an existing file as a whole", async () => {
    const file = join(await dirs.make(), "state.json");
    await fsp.writeFile(file, "a much longer old content that must not show through");

    await writeFileAtomic(file, "new");

    expect(await fsp.readFile(file, "utf8")).toBe("new");
  });

  it("gives the file mode 0600 unless told otherwise", async () => {
    const dir = await dirs.make();
    const file = join(dir, "state.json");
    const other = join(dir, "other.json");

    await writeFileAtomic(file, "x");
    await writeFileAtomic(other, "x", { mode: 0o640 });

    expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(other)).mode & 0o777).toBe(0o640 & ~process.umask());
  });

  it("rejects with the cause, keeps the old file and removes the temp file when the sync fails", async () => {
    const dir = await dirs.make();
    const file = join(dir, "state.json");
    await fsp.writeFile(file, "old");

    await expect(writeFileAtomic(file, "new", { fs: failingSyncFs })).rejects.toThrow("EIO");

    expect(await fsp.readFile(file, "utf8")).toBe("old");
    expect(await fsp.readdir(dir)).toEqual(["state.json"]);
  });

  it("rejects when the directory does not exist, and creates nothing", async () => {
    const dir = await dirs.make();

    await expect(writeFileAtomic(join(dir, "missing", "state.json"), "x")).rejects.toThrow("ENOENT");

    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it("lets many writes to the same file at once each leave a whole content", async () => {
    const file = join(await dirs.make(), "state.json");
    const contents = Array.from({ length: 20 }, (_, i) => `content ${i} `.repeat(1000));

    await Promise.all(contents.map((content) => writeFileAtomic(file, content)));

    expect(contents).toContain(await fsp.readFile(file, "utf8"));
  });
});
