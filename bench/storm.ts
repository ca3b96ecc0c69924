// Scenario 3, registration storm: 10 000 Registers from 500 concurrent callers on 500 connections (as 500
// daemons would), into an empty registry; each is acknowledged only once durable (group commit). How many
// file writes they took comes from agent_registry_store_writes_total before and after.

import { join } from "node:path";
import type { BenchContext } from "./context.js";
import { GeneratorHandle } from "./generator-handle.js";
import { waitForQuiet, watchInterference } from "./interference.js";
import type { LatencySummary } from "./latency.js";
import { cpuPercent, sampleProcess } from "./proc-stats.js";
import { scrape } from "./registry-probe.js";
import { startRegistry } from "./targets.js";

export interface StormReport {
  readonly registrations: number;
  readonly callers: number;
  readonly connections: number;
  readonly ok: number;
  readonly durationMs: number;
  readonly perSecond: number;
  readonly latency: LatencySummary;
  readonly errors: Readonly<Record<string, number>>;
  readonly fileWrites: number;
  readonly registrationsPerWrite: number;
  readonly finalFileBytes: number;
  readonly serverCpuPercent: number;
  /** CPU other processes used meanwhile, percent of one core. */
  readonly interferencePercent: number;
}

/** `profile`: run the server under node --cpu-prof (into the context's profile directory, "storm"). */
export async function registrationStorm(ctx: BenchContext, total: number, callers: number, profile: boolean): Promise<StormReport> {
  await waitForQuiet(ctx.quick ? 10_000 : 120_000, ctx.log);
  const target = await startRegistry(ctx.processes, {
    dataDir: await ctx.freshDir("registry-storm"),
    heartbeatIntervalS: 30,
    agentTimeoutS: 60,
    ...(profile && ctx.profileDir !== undefined ? { cpuProfileDir: join(ctx.profileDir, "storm") } : {}),
  });
  if (target.httpUrl === undefined) throw new Error("the registry has no HTTP listener");
  const generator = GeneratorHandle.start(ctx.processes);
  try {
    await generator.stormPrepare(target.address, callers, callers);
    const before = await scrape(target.httpUrl);
    const others = await watchInterference([target.child.pid, generator.pid]);
    const s0 = await sampleProcess(target.child.pid);
    const result = await generator.stormRun(total);
    const s1 = await sampleProcess(target.child.pid);
    const interferencePercent = await others();
    const after = await scrape(target.httpUrl);
    const writes = after.sum("agent_registry_store_writes_total", { result: "ok" }) - before.sum("agent_registry_store_writes_total", { result: "ok" });
    return {
      registrations: total,
      callers,
      connections: callers,
      ok: result.ok,
      durationMs: result.durationMs,
      perSecond: result.ok / (result.durationMs / 1000),
      latency: result.latency,
      errors: result.errors,
      fileWrites: writes,
      registrationsPerWrite: result.ok / Math.max(1, writes),
      finalFileBytes: after.value("agent_registry_store_file_bytes") ?? 0,
      serverCpuPercent: cpuPercent(s0, s1),
      interferencePercent,
    };
  } finally {
    await generator.stop();
    await target.stop();
  }
}
