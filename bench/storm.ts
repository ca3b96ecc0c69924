// Scenario 3, registration storm: N Registers from 500 concurrent callers on 500 connections (as 500
// daemons would), into an empty registry on one store (json or sqlite); each is acknowledged only once
// durable (group commit). How many store writes they took, and how long those writes ran, come from
// /metrics before and after; block-layer writes from /proc/<pid>/io; the store's files are measured after.

import { join } from "node:path";
import type { StoreKind } from "../src/config/index.js";
import type { BenchContext } from "./context.js";
import { GeneratorHandle } from "./generator-handle.js";
import { waitForQuiet, watchInterference } from "./interference.js";
import type { LatencySummary } from "./latency.js";
import { cpuPercent, sampleProcess } from "./proc-stats.js";
import { scrape } from "./registry-probe.js";
import { storeDataBytes } from "./store-data-dir.js";
import { startRegistry } from "./targets.js";

export interface StormSpec {
  readonly store: StoreKind;
  readonly registrations: number;
  readonly callers: number;
  /** Run the server under node --cpu-prof (into the context's profile directory, storm-<store>). */
  readonly profile: boolean;
}

export interface StormReport {
  readonly store: StoreKind;
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
  /** Time the store's writes took, summed (agent_registry_store_write_duration_seconds). */
  readonly writeSeconds: number;
  /** What the server process caused to be written to storage (/proc/<pid>/io write_bytes). */
  readonly ioWriteBytes: number | undefined;
  /** The store's files on disk once the server stopped (agents.json; registry.db, its WAL checkpointed). */
  readonly finalFileBytes: number;
  readonly serverCpuPercent: number;
  /** CPU other processes used meanwhile, percent of one core. */
  readonly interferencePercent: number;
}

export async function registrationStorm(ctx: BenchContext, spec: StormSpec): Promise<StormReport> {
  const { store, registrations: total, callers } = spec;
  await waitForQuiet(ctx.quick ? 10_000 : 120_000, ctx.log);
  const dataDir = await ctx.freshDir(`registry-storm-${store}-${total}`);
  const target = await startRegistry(ctx.processes, {
    dataDir,
    store,
    heartbeatIntervalS: 30,
    agentTimeoutS: 60,
    ...(spec.profile && ctx.profileDir !== undefined ? { cpuProfileDir: join(ctx.profileDir, `storm-${store}`) } : {}),
  });
  if (target.httpUrl === undefined) throw new Error("the registry has no HTTP listener");
  const generator = GeneratorHandle.start(ctx.processes);
  let report: Omit<StormReport, "finalFileBytes">;
  try {
    await generator.stormPrepare(target.address, callers, callers);
    const before = await scrape(target.httpUrl);
    const others = await watchInterference([target.child.pid, generator.pid]);
    const s0 = await sampleProcess(target.child.pid);
    const result = await generator.stormRun(total);
    const s1 = await sampleProcess(target.child.pid);
    const interferencePercent = await others();
    const after = await scrape(target.httpUrl);
    const delta = (name: string, labels = {}): number => after.sum(name, labels) - before.sum(name, labels);
    const writes = delta("agent_registry_store_writes_total", { result: "ok" });
    report = {
      store,
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
      writeSeconds: delta("agent_registry_store_write_duration_seconds_sum"),
      ioWriteBytes: s0.writeBytes === undefined || s1.writeBytes === undefined ? undefined : s1.writeBytes - s0.writeBytes,
      serverCpuPercent: cpuPercent(s0, s1),
      interferencePercent,
    };
  } finally {
    await generator.stop();
    await target.stop();
  }
  return { ...report, finalFileBytes: await storeDataBytes(dataDir, store) };
}
