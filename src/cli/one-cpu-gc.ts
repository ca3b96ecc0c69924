// On one CPU (an affinity of one core, or a container's CPU quota of at most one), V8's concurrent marking
// runs its helper threads on the core the event loop needs. perf of a server with 10 000 agents pinned to
// one core: during a major GC four ConcurrentMarking threads took three quarters of the core for ~350 ms,
// the main thread ran a quarter of the time, and beat acks waited (a "stall" no GC pause metric shows, as
// the marking is concurrent, not a pause). With concurrent marking off, V8 marks incrementally on the main
// thread, in short steps between callbacks: the same work, without handing the core to four threads.

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";

/** Turns V8's concurrent marking off when this process has one CPU; says whether it did. */
export function markOnTheMainThreadOnOneCpu(): boolean {
  if (availableParallelism() > 1 && !(cpuQuota() <= 1)) return false;
  setFlagsFromString("--no-concurrent-marking");
  return true;
}

/** The cgroup's CPU quota in CPUs (v2 cpu.max, or v1 cfs_quota/period); Infinity when there is none. */
function cpuQuota(): number {
  const v2 = read("/sys/fs/cgroup/cpu.max")?.split(/\s+/);
  if (v2 !== undefined && v2[0] !== "max") return Number(v2[0]) / Number(v2[1]);
  const quota = Number(read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"));
  const period = Number(read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
  return quota > 0 && period > 0 ? quota / period : Infinity;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    // Not in a cgroup that limits the CPU (or not Linux): no quota.
    return undefined;
  }
}
