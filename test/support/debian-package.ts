// A program or library from Debian's packages that a test needs, installed with apt-get when missing (as
// root; after `apt-get update` if the first try fails). Undefined when it cannot be: the test then skips,
// saying why.

import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";

export function debianPackage(path: string, pkg: string): string | undefined {
  if (existsSync(path)) return path;
  if (process.getuid?.() !== 0) return undefined;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = (): boolean => spawnSync("apt-get", ["install", "-y", pkg], { env, stdio: "ignore", timeout: 600_000 }).status === 0;
  if (!install()) {
    spawnSync("apt-get", ["update"], { env, stdio: "ignore", timeout: 300_000 });
    install();
  }
  return existsSync(path) ? path : undefined;
}
