// Where things are, wherever the compiled harness runs from (dist/bench-build/bench/): the repository root
// (the directory holding package.json), the built server, the etcd proto and the results directory.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "bench"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root (a directory with package.json and bench/)");
    dir = parent;
  }
}

export const ROOT = findRoot();
/** `agent-registry` as `npm run build` bundles it (rolldown.config.js). */
export const SERVER_CLI = join(ROOT, "dist", "bundle", "agent-registry.js");
/** The server's modules as tsc builds them (`tsc -p tsconfig.build.json`, before the bundle). */
export const SERVER_MODULES = join(ROOT, "dist", "src");
/** The compiled harness (`tsc -p bench/tsconfig.json`). */
export const BENCH_BUILD = join(ROOT, "dist", "bench-build", "bench");
export const ETCD_LEASE_PROTO = join(ROOT, "bench", "proto", "etcd", "lease.proto");
export const RESULTS_DIR = join(ROOT, "bench", "results");
export const BENCHMARKS_MD = join(ROOT, "BENCHMARKS.md");
