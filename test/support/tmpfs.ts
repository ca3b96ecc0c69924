// Small tmpfs file systems for disk-trouble tests: a data directory that can be remounted read-only or
// filled up. Needs root (CI runs as root); where mounting is not allowed, the tests that need it skip.

import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether this process may mount a tmpfs (root, and a sandbox that allows it). */
export const canMount: boolean = (() => {
  let probe: string | undefined;
  try {
    probe = execFileSync("mktemp", ["-d"]).toString().trim();
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe]);
    return true;
  } catch {
    return false; // not root, or no mount in this sandbox: the tmpfs cases are skipped
  } finally {
    if (probe !== undefined) execFileSync("rmdir", [probe]);
  }
})();

export class Tmpfs {
  private constructor(readonly dir: string) {}

  static async mount(sizeKb: number): Promise<Tmpfs> {
    const dir = await mkdtemp(join(tmpdir(), "agent-registry-tmpfs-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k`, "tmpfs", dir]);
    return new Tmpfs(dir);
  }

  readOnly(): void {
    execFileSync("mount", ["-o", "remount,ro", this.dir]);
  }

  writable(): void {
    execFileSync("mount", ["-o", "remount,rw", this.dir]);
  }

  /** Fills the file system with a file of zeros until no space is left; returns its path. */
  fill(): string {
    const filler = join(this.dir, "filler");
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=4k"], { stdio: "ignore" });
    } catch {
      // dd stops with "no space left on device": that is the point
    }
    return filler;
  }

  async unmount(): Promise<void> {
    this.writable();
    execFileSync("umount", [this.dir]);
    await rm(this.dir, { recursive: true, force: true });
  }
}
