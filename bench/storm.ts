// Scenario 3, registration storm: N Registers from 500 concurrent callers on 500 connections (as 500
// daemons would), into an empty registry on one store (json or sqlite); each is acknowledged only once
// durable (group commit). How many store writes they took, and how long those writes ran, come from
// /metrics before and after; block-layer writes from /proc/<pid>/io; the store's files are measured after.
// The same storm against the bare grpc-js echo (Register answered at once) is the load generator's own
// ceiling: a registry that comes near it was not the limit.

import { join } from "node:path";
import type { StoreKind } from "../src/config/index.js";
import type { BenchContext } from "./context.js";
import { GeneratorHandle } from "./generator-handle.js";
import { waitForQuiet, watchInterference } from "./interference.js";
import type { LatencySummary } from "./latency.js";
import { cpuPercent, sampleProcess } from "./proc-stats.js";
import type { PromText } from "./prom-text.js";
import { scrape } from "./registry-probe.js";
import { storeDataBytes } from "./store-data-dir.js";
import { type Target, startEcho, startRegistry } from "./targets.js";

/** The registry on one of its stores, or the bare grpc-js echo. */
export type StormTarget = StoreKind | "echo-grpc";

export interface StormSpec {
  readonly against: StormTarget;
  readonly registrations: number;
  readonly callers: number;
  /** Registry only: run the server under node --cpu-prof (into the context's profile directory, storm-<store>). */
  readonly profile: boolean;
}

export interface StormReport {
  readonly against: StormTarget;
  readonly registrations: number;
  readonly callers: number;
  readonly connections: number;
  readonly ok: number;
  readonly durationMs: number;
  readonly perSecond: number;
  readonly latency: LatencySummary;
  readonly errors: Readonly<Record<string, number>>;
  /** The registry's store writes (0 for the echo). */
  readonly fileWrites: number;
  readonly registrationsPerWrite: number;
  /** Time the store's writes took, summed (agent_registry_store_write_duration_seconds). */
  readonly writeSeconds: number;
  /** What the server process caused to be written to storage (/proc/<pid>/io write_bytes). */
  readonly ioWriteBytes: number | undefined;
  /** The store's files on disk once the server stopped (agents.json; registry.db, its WAL checkpointed). */
  readonly finalFileBytes: number;
  readonly serverCpuPercent: number;
  /** The load generator's CPU meanwhile: near 100%, the client side was the limit. */
  readonly generatorCpuPercent: number;
  /** CPU other processes used meanwhile, percent of one core. */
  readonly interferencePercent: number;
}

export async function registrationStorm(ctx: BenchContext, spec: StormSpec): Promise<StormReport> {
  const { against, registrations: total, callers } = spec;
  await waitForQuiet(ctx.quick ? 10_000 : 120_000, ctx.log);
  const { target, dataDir } = await startStormTarget(ctx, spec);
  const metrics = async (): Promise<PromText | undefined> => (target.httpUrl === undefined ? undefined : scrape(target.httpUrl));
  const generator = GeneratorHandle.start(ctx.processes);
  let report: Omit<StormReport, "finalFileBytes">;
  try {
    await generator.stormPrepare(target.address, callers, callers);
    const before = await metrics();
    const others = await watchInterference([target.child.pid, generator.pid]);
    const [s0, g0] = await Promise.all([sampleProcess(target.child.pid), sampleProcess(generator.pid)]);
    const result = await generator.stormRun(total);
    const [s1, g1] = await Promise.all([sampleProcess(target.child.pid), sampleProcess(generator.pid)]);
    const interferencePercent = await others();
    const after = await metrics();
    const delta = (name: string, labels = {}): number => (after?.sum(name, labels) ?? 0) - (before?.sum(name, labels) ?? 0);
    const writes = delta("agent_registry_store_writes_total", { result: "ok" });
    report = {
      against,
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
      generatorCpuPercent: cpuPercent(g0, g1),
      interferencePercent,
    };
  } finally {
    await generator.stop();
    await target.stop();
  }
  return { ...report, finalFileBytes: against === "echo-grpc" || dataDir === undefined ? 0 : await storeDataBytes(dataDir, against) };
}

async function startStormTarget(ctx: BenchContext, spec: StormSpec): Promise<{ target: Target; dataDir?: string }> {
  if (spec.against === "echo-grpc") return { target: await startEcho(ctx.processes, "echo-grpc", 30_000) };
  const dataDir = await ctx.freshDir(`registry-storm-${spec.against}-${spec.registrations}`);
  const target = await startRegistry(ctx.processes, {
    dataDir,
    store: spec.against,
    heartbeatIntervalS: 30,
    agentTimeoutS: 60,
    ...(spec.profile && ctx.profileDir !== undefined ? { cpuProfileDir: join(ctx.profileDir, `storm-${spec.against}`) } : {}),
  });
  return { target, dataDir };
}
