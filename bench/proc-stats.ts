// What /proc says about one process: CPU time (utime + stime of that process only, in clock ticks),
// resident memory (VmRSS), bytes it caused to be written to storage, and how many sockets it holds.

import { execFileSync } from "node:child_process";
import { readFile, readdir, readlink } from "node:fs/promises";

export interface ProcSample {
  /** performance.now() when read. */
  readonly at: number;
  /** utime + stime, in seconds. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  /** /proc/<pid>/io write_bytes; undefined where it cannot be read. */
  readonly writeBytes: number | undefined;
}

export const CLOCK_TICKS = clockTicks();

function clockTicks(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

export async function sampleProcess(pid: number): Promise<ProcSample> {
  const at = performance.now();
  const [stat, status, io] = await Promise.all([
    readFile(`/proc/${pid}/stat`, "utf8"),
    readFile(`/proc/${pid}/status`, "utf8"),
    readFile(`/proc/${pid}/io`, "utf8").catch(() => undefined),
  ]);
  // The command name (field 2) may hold spaces and parentheses: the fields that follow start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  const write = io === undefined ? null : /^write_bytes:\s+(\d+)$/m.exec(io);
  return {
    at,
    cpuSeconds,
    rssBytes: rss === null ? NaN : Number(rss[1]) * 1024,
    writeBytes: write === null ? undefined : Number(write[1]),
  };
}

/** CPU use between two samples, in percent of one core. */
export function cpuPercent(from: ProcSample, to: ProcSample): number {
  return ((to.cpuSeconds - from.cpuSeconds) / ((to.at - from.at) / 1000)) * 100;
}

/** Open sockets (listeners included) of a process, from its file descriptors. */
export async function countSockets(pid: number): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  let sockets = 0;
  for (let i = 0; i < fds.length; i += 512) {
    const links = await Promise.all(fds.slice(i, i + 512).map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")));
    for (const link of links) if (link.startsWith("socket:")) sockets++;
  }
  return sockets;
}

/** Clock ticks of each core, from /proc/stat: process time (user, nice, system), interrupt time, total. */
export interface CoreTimes {
  readonly process: readonly number[];
  readonly interrupts: readonly number[];
  readonly total: readonly number[];
}

export async function sampleCores(): Promise<CoreTimes> {
  const text = await readFile("/proc/stat", "utf8");
  const processTicks: number[] = [];
  const interrupts: number[] = [];
  const total: number[] = [];
  for (const line of text.split("\n")) {
    const match = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    // user nice system idle iowait irq softirq steal
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = (match[2] as string).split(/\s+/).map(Number);
    const core = Number(match[1]);
    processTicks[core] = user + nice + system;
    interrupts[core] = irq + softirq;
    total[core] = user + nice + system + idle + iowait + irq + softirq + steal;
  }
  return { process: processTicks, interrupts, total };
}

export interface CoreUse {
  /** Time in processes (user + system), percent of the core. */
  readonly processPercent: number;
  /** Interrupt and softirq time (on loopback: much of the TCP work), percent of the core. */
  readonly interruptPercent: number;
}

/** How each core was used between two samples. */
export function coreUse(from: CoreTimes, to: CoreTimes): CoreUse[] {
  return to.total.map((total, core) => {
    const span = Math.max(1, total - (from.total[core] ?? 0));
    return {
      processPercent: (((to.process[core] ?? 0) - (from.process[core] ?? 0)) / span) * 100,
      interruptPercent: (((to.interrupts[core] ?? 0) - (from.interrupts[core] ?? 0)) / span) * 100,
    };
  });
}
