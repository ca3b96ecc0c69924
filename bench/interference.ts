// Other processes on the machine (another session's test suite, a build) skew a measurement: this says how
// much CPU they used during a window (process time of every core, from /proc/stat, minus our own
// processes'), and waits for a quiet machine before a measurement starts.

import { CLOCK_TICKS, type CoreTimes, type ProcSample, cpuPercent, sampleCores, sampleProcess } from "./proc-stats.js";

/** Above this (percent of one core) a window counts as skewed. */
export const INTERFERENCE_LIMIT = 10;

/**
 * A load generator whose own event loop stalled longer than this timestamped the acks that arrived
 * meanwhile late by as much: in a window of 10 s or more, such a stall alone can set the ack p99 (1 % of
 * the beats), a fault of the client, not of the server. Such a window is measured again, as a skewed one is.
 */
export const GENERATOR_STALL_MS = 100;

/** Why a window should be measured again; none when it need not be. */
export function disturbances(interferencePercent: number, generatorLoopMaxMs: number): string[] {
  const reasons: string[] = [];
  if (interferencePercent > INTERFERENCE_LIMIT) reasons.push(`other processes used ${interferencePercent.toFixed(0)}% of a core during the window`);
  if (generatorLoopMaxMs > GENERATOR_STALL_MS) reasons.push(`the load generator's event loop stalled ${generatorLoopMaxMs.toFixed(0)} ms during the window`);
  return reasons;
}

/** Starts watching; the returned function says how much others used since, in percent of one core. */
export async function watchInterference(ours: readonly number[]): Promise<() => Promise<number>> {
  const pids = [...new Set([process.pid, ...ours])];
  const before = await Promise.all([sampleCores(), ...pids.map((pid) => sampleProcess(pid))]);
  return async () => {
    const after = await Promise.all([sampleCores(), ...pids.map((pid) => sampleProcess(pid).catch(() => undefined))]);
    const [cores0, ...procs0] = before as [CoreTimes, ...ProcSample[]];
    const [cores1, ...procs1] = after as [CoreTimes, ...(ProcSample | undefined)[]];
    const seconds = ((procs1.find((p) => p !== undefined)?.at ?? performance.now()) - (procs0[0]?.at ?? 0)) / 1000;
    let machineTicks = 0;
    cores1.process.forEach((ticks, core) => (machineTicks += ticks - (cores0.process[core] ?? 0)));
    const machinePercent = (machineTicks / CLOCK_TICKS / Math.max(0.001, seconds)) * 100;
    let oursPercent = 0;
    procs1.forEach((p, i) => {
      const p0 = procs0[i];
      if (p !== undefined && p0 !== undefined) oursPercent += cpuPercent(p0, p);
    });
    return Math.max(0, machinePercent - oursPercent);
  };
}

/**
 * Waits (up to `maxMs`) until others use less than the limit over one second; says how long it waited.
 * `ours`: processes of the run that are not others (the server and load generator of a load that stays on).
 */
export async function waitForQuiet(maxMs: number, log: (line: string) => void, ours: readonly number[] = []): Promise<number> {
  const started = Date.now();
  let logged = false;
  for (;;) {
    const stop = await watchInterference(ours);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const others = await stop();
    if (others < INTERFERENCE_LIMIT) return Date.now() - started;
    if (Date.now() - started > maxMs) {
      log(`  the machine is still busy (${others.toFixed(0)}% of a core used by other processes); measuring anyway`);
      return Date.now() - started;
    }
    if (!logged) {
      log(`  waiting for a quiet machine (${others.toFixed(0)}% of a core used by other processes) ...`);
      logged = true;
    }
  }
}
