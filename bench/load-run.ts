// One load run against one server: start the server, measure it idle, set up the fleet (register and open
// every stream), beat (steady timer or closed loop), warm up, then measure one window: server CPU and RSS
// from /proc, the generator's CPU, ack round trips and errors from the generator, and (registry) the
// scrape deltas of /metrics and the store's files. Where a figure swings from window to window (CPU per
// beat, memory, the ack tail), several windows are measured one after another on the same load and each
// such figure is their median. An `after` hook runs with the load still on (reads, detection). Everything
// started here is stopped here, also on failure.

import { join } from "node:path";
import type { StoreKind } from "../src/config/index.js";
import type { BenchContext } from "./context.js";
import { GeneratorHandle } from "./generator-handle.js";
import type { LatencySummary } from "./latency.js";
import { type ProcSample, type CoreUse, coreUse, countSockets, cpuPercent, sampleCores, sampleProcess } from "./proc-stats.js";
import { SERVER_CORE } from "./processes.js";
import type { PromText } from "./prom-text.js";
import { disturbances, waitForQuiet, watchInterference } from "./interference.js";
import type { FleetReady, LoopDelay, TargetKind, WindowStats } from "./protocol.js";
import { afterNextStoreWrite, scrape } from "./registry-probe.js";
import { storeDataBytes, writeStoreDataDir } from "./store-data-dir.js";
import { TARGET_LABELS, type Target, startEcho, startEtcdTarget, startRegistry, waitForLine } from "./targets.js";

export type Load = { readonly kind: "steady"; readonly intervalMs: number } | { readonly kind: "closed"; readonly window: number };

export interface LoadRunSpec {
  readonly name: string;
  readonly target: TargetKind;
  /** Registry only: the store it runs on (default json). */
  readonly store?: StoreKind;
  readonly agents: number;
  readonly connections: number;
  readonly load: Load;
  readonly warmupMs: number;
  readonly windowMs: number;
  /**
   * The registry's HEARTBEAT_INTERVAL and AGENT_TIMEOUT (default 30 and 60, production's). The load beats at
   * its own rate whatever the server tells agents; the interval also sets the server's keepalive ping
   * interval (1-30 s), which the grpc-js echo copies.
   */
  readonly heartbeatIntervalS?: number;
  readonly agentTimeoutS?: number;
  /** Registry only: run it under node --cpu-prof (the profile goes to the context's profile directory). */
  readonly profile?: boolean;
  /**
   * Registry only: start it with the fleet already in its store (agents.json, or registry.db), and open the
   * streams without Register, so that a run shows the steady state rather than N durable registrations.
   */
  readonly preload?: boolean;
  /**
   * Registry only: start each window this long after a store write. Beat times go to the store once per
   * heartbeat interval, so a window of whole intervals started half an interval after a write holds whole
   * flushes, not one more or one less depending on where it fell.
   */
  readonly windowOffsetAfterWriteMs?: number;
  /**
   * Windows measured one after another on the same load (default 1). With more, the result's CPU per beat,
   * RSS and ack latencies are the medians of the windows (each from its median window), errors their sum.
   */
  readonly windows?: number;
}

/** What one window measured of the figures that swing from window to window. */
export interface WindowFigures {
  readonly cpuMicrosPerBeat: number;
  readonly serverCpuPercent: number;
  readonly rssMiB: number;
  readonly kbPerStream: number;
  readonly ackP50Ms: number;
  readonly ackP99Ms: number;
}

export interface RunningLoad {
  readonly target: Target;
  readonly generator: GeneratorHandle;
  readonly fleet: FleetReady;
  readonly spec: LoadRunSpec;
}

export interface Persistence {
  readonly writes: number;
  readonly writesPerSecond: number;
  /**
   * agent_registry_store_file_bytes: what the last write carried (json: the size of agents.json; sqlite:
   * the bytes of the rows' values, without SQLite's page overhead).
   */
  readonly fileBytes: number;
  /** writes/s x fileBytes: what the store hands to the file system (json: exact; sqlite: about). */
  readonly bytesPerSecond: number;
  /** From /proc/<pid>/io write_bytes: what reached the block layer. */
  readonly ioWriteBytesPerSecond: number | undefined;
  /** Seconds spent in store writes per second (agent_registry_store_write_duration_seconds). */
  readonly writeSecondsPerSecond: number;
  /** The store's files on disk at the end of the window (agents.json; registry.db and its WAL). */
  readonly dataBytes?: number;
}

export interface LoadRunResult {
  readonly name: string;
  readonly target: TargetKind;
  /** The registry's store. */
  readonly store?: StoreKind;
  readonly label: string;
  readonly agents: number;
  readonly connections: number;
  /** Sockets the server process holds after set-up (listeners included): checks `connections`. */
  readonly serverSockets: number;
  readonly load: Load;
  readonly setupMs: number;
  readonly setupErrors: Readonly<Record<string, number>>;
  readonly setupLatency: LatencySummary;
  readonly streamsOpen: number;
  readonly windowSeconds: number;
  readonly sent: number;
  readonly acked: number;
  readonly skipped: number;
  readonly beatsPerSecond: number;
  readonly ack: LatencySummary;
  readonly errors: Readonly<Record<string, number>>;
  readonly errorCount: number;
  readonly serverCpuPercent: number;
  readonly cpuMicrosPerBeat: number;
  readonly idleRssMiB: number;
  readonly rssMiB: number;
  /** (RSS under load - idle RSS) / agents. */
  readonly kbPerStream: number;
  readonly generatorCpuPercent: number;
  /** The load generator's own event-loop delay: when it is high, the client inflated the round trips. */
  readonly generatorLoopDelayMs: LoopDelay;
  /** How each core of the machine was used over the window. */
  readonly cores: readonly CoreUse[];
  /**
   * Process time on the server's core that was not the server's (another process: the window is skewed).
   * Interrupt time (loopback TCP) is in `cores`, not here and not in the server's CPU.
   */
  readonly otherOnServerCorePercent: number;
  /** CPU other processes used on the whole machine during the window, percent of one core. */
  readonly interferencePercent: number;
  /**
   * Windows measured in all: for each one kept, until one without interference or a stall of the load
   * generator (the least disturbed is kept).
   */
  readonly windowAttempts: number;
  /** Each kept window's figures, when several were (spec.windows > 1); the result holds their medians. */
  readonly windowFigures?: readonly WindowFigures[];
  /** The server's event-loop delay over the window (registry: /metrics; echoes: SIGUSR2; etcd: none). */
  readonly serverLoopDelayMs: LoopDelay | undefined;
  readonly serverBeats?: number;
  readonly persistence?: Persistence;
}

const MIB = 1024 * 1024;
const DEFAULT_INTERVAL_S = 30;
const DEFAULT_TIMEOUT_S = 60;
/** The registry's REGISTRY_MAX_STREAMS default. */
const DEFAULT_MAX_STREAMS = 20_000;

/** The registry's keepalive ping interval for a heartbeat interval (src/server/server.ts). */
function keepaliveMs(intervalS: number): number {
  return Math.min(Math.max(intervalS * 1000, 1000), 30_000);
}
/** prom-client's default eventLoopMonitoringPrecision. */
const PROM_LOOP_RESOLUTION_MS = 10;

export async function startTarget(
  ctx: BenchContext,
  spec: Pick<LoadRunSpec, "target" | "name" | "store" | "agents" | "heartbeatIntervalS" | "agentTimeoutS" | "profile">,
  dataDir?: string,
): Promise<Target> {
  switch (spec.target) {
    case "registry":
      return startRegistry(ctx.processes, {
        dataDir: dataDir ?? (await ctx.freshDir(`registry-${spec.name}`)),
        store: spec.store ?? "json",
        // Room for every stream past the default limit (20 000), and for a few more.
        ...(spec.agents > DEFAULT_MAX_STREAMS - 1000 ? { maxStreams: spec.agents + 1000 } : {}),
        heartbeatIntervalS: spec.heartbeatIntervalS ?? DEFAULT_INTERVAL_S,
        agentTimeoutS: spec.agentTimeoutS ?? DEFAULT_TIMEOUT_S,
        ...(spec.profile === true && ctx.profileDir !== undefined ? { cpuProfileDir: join(ctx.profileDir, spec.name) } : {}),
      });
    case "echo-grpc":
    case "echo-connect":
      return startEcho(ctx.processes, spec.target, keepaliveMs(spec.heartbeatIntervalS ?? DEFAULT_INTERVAL_S));
    case "etcd":
      if (ctx.etcd === undefined) throw new Error("etcd is not available");
      return startEtcdTarget(ctx.processes, ctx.etcd, await ctx.freshDir(`etcd-${spec.name}`));
  }
}

export async function loadRun<T = undefined>(
  ctx: BenchContext,
  spec: LoadRunSpec,
  after?: (running: RunningLoad) => Promise<T>,
): Promise<{ result: LoadRunResult; extra: T | undefined }> {
  await waitForQuiet(ctx.quick ? 10_000 : 120_000, ctx.log);
  let agentIds: readonly string[] | undefined;
  const store = spec.store ?? "json";
  const dataDir = spec.target === "registry" ? await ctx.freshDir(`registry-${spec.name}`) : undefined;
  if (spec.preload === true && dataDir !== undefined) {
    agentIds = (await writeStoreDataDir(ctx.processes, dataDir, store, spec.agents, Date.now(), true)).ids;
  }
  const target = await startTarget(ctx, spec, dataDir);
  let generator: GeneratorHandle | undefined;
  try {
    await sleep(1000);
    const idle = await sampleProcess(target.child.pid);
    generator = GeneratorHandle.start(ctx.processes);
    const fleet = await generator.fleet({
      kind: spec.target,
      address: target.address,
      agents: spec.agents,
      connections: spec.connections,
      setupConcurrency: Math.min(200, spec.agents),
      leaseTtlSeconds: spec.agentTimeoutS ?? DEFAULT_TIMEOUT_S,
      ...(agentIds === undefined ? {} : { agentIds }),
    });
    if (spec.load.kind === "steady") await generator.steady(spec.load.intervalMs);
    else await generator.closedLoop(spec.load.window);
    await sleep(spec.warmupMs);
    const serverSockets = await countSockets(target.child.pid);

    // A window in which other processes ran, or the load generator itself stalled, is measured again
    // (the load stays on), up to a few times; the least disturbed one is kept. The server's own stalls
    // are never a reason: they are what is measured.
    const load = generator;
    const quietWindow = async (): Promise<Window> => {
      let best: Window | undefined;
      let measured = 0;
      for (let attempt = 1; attempt <= (ctx.quick ? 2 : 5); attempt++) {
        measured = attempt;
        if (attempt > 1) await waitForQuiet(ctx.quick ? 10_000 : 60_000, ctx.log, [target.child.pid, load.pid]);
        if (spec.windowOffsetAfterWriteMs !== undefined && target.httpUrl !== undefined) {
          await afterNextStoreWrite(target.httpUrl, 60_000);
          await sleep(spec.windowOffsetAfterWriteMs);
        }
        const window = await measureWindow(target, load, spec.windowMs);
        if (best === undefined || quieter(window, best)) best = window;
        const [reason] = disturbancesOf(window);
        if (reason === undefined) break;
        ctx.log(`  ${reason}; measuring again`);
      }
      return { ...(best as Window), attempts: measured };
    };
    const kept: Window[] = [];
    for (let w = 0; w < Math.max(1, spec.windows ?? 1); w++) kept.push(await quietWindow());
    const dataBytes = dataDir === undefined ? undefined : await storeDataBytes(dataDir, store);

    const extra = after === undefined ? undefined : await after({ target, generator, fleet, spec });

    const perWindow = kept.map((window) => resultOf(spec, store, window, { idle, serverSockets, fleet, dataBytes }));
    const result = kept.length === 1 ? (perWindow[0] as LoadRunResult) : medianOf(perWindow);
    return { result, extra };
  } finally {
    await generator?.stop();
    await target.stop();
  }
}

/** What a run knows besides its windows. */
interface RunContext {
  readonly idle: ProcSample;
  readonly serverSockets: number;
  readonly fleet: FleetReady;
  readonly dataBytes: number | undefined;
}

/** The run's result as measured in one window. */
function resultOf(spec: LoadRunSpec, store: StoreKind, window: Window, { idle, serverSockets, fleet, dataBytes }: RunContext): LoadRunResult {
  const { stats, server0, server1, generator0, generator1, cores, metricsBefore, metricsAfter, echoDelay, interferencePercent, attempts } = window;
  const windowSeconds = stats.windowMs / 1000;
  const cpuSeconds = server1.cpuSeconds - server0.cpuSeconds;
  const errorCount = Object.values(stats.errors).reduce((a, b) => a + b, 0) + Object.values(fleet.setupErrors).reduce((a, b) => a + b, 0);
  return {
    name: spec.name,
    target: spec.target,
    ...(spec.target === "registry" ? { store } : {}),
    label: TARGET_LABELS[spec.target],
    agents: spec.agents,
    connections: spec.connections,
    serverSockets,
    load: spec.load,
    setupMs: fleet.setupMs,
    setupErrors: fleet.setupErrors,
    setupLatency: fleet.setupLatency,
    streamsOpen: stats.streamsOpen,
    windowSeconds,
    sent: stats.sent,
    acked: stats.acked,
    skipped: stats.skipped,
    beatsPerSecond: stats.acked / windowSeconds,
    ack: stats.latency,
    errors: { ...fleet.setupErrors, ...stats.errors },
    errorCount,
    serverCpuPercent: cpuPercent(server0, server1),
    cpuMicrosPerBeat: (cpuSeconds * 1e6) / Math.max(1, stats.acked),
    idleRssMiB: idle.rssBytes / MIB,
    rssMiB: server1.rssBytes / MIB,
    kbPerStream: (server1.rssBytes - idle.rssBytes) / 1024 / spec.agents,
    generatorCpuPercent: cpuPercent(generator0, generator1),
    generatorLoopDelayMs: stats.loopDelayMs,
    cores,
    // Process time on the server's core that was not the server's: another process ran there.
    otherOnServerCorePercent: Math.max(0, (cores[SERVER_CORE]?.processPercent ?? 0) - cpuPercent(server0, server1)),
    interferencePercent,
    windowAttempts: attempts,
    serverLoopDelayMs: echoDelay,
    ...(metricsBefore !== undefined && metricsAfter !== undefined
      ? registryMetrics(metricsBefore, metricsAfter, server0, server1, windowSeconds, dataBytes)
      : {}),
  };
}

function figuresOf(r: LoadRunResult): WindowFigures {
  return { cpuMicrosPerBeat: r.cpuMicrosPerBeat, serverCpuPercent: r.serverCpuPercent, rssMiB: r.rssMiB, kbPerStream: r.kbPerStream, ackP50Ms: r.ack.p50, ackP99Ms: r.ack.p99 };
}

/** The window whose `pick` is the median (the lower middle one of an even count). */
function medianWindow(results: readonly LoadRunResult[], pick: (r: LoadRunResult) => number): LoadRunResult {
  return [...results].sort((a, b) => pick(a) - pick(b))[Math.floor((results.length - 1) / 2)] as LoadRunResult;
}

/**
 * Several windows of one run as one result: the ack latencies of the window with the median ack p99 (with
 * everything else that window measured), CPU from the window with the median CPU per beat, memory from the
 * one with the median KB per stream; errors and windows measured summed over all of them.
 */
function medianOf(results: readonly LoadRunResult[]): LoadRunResult {
  const byAck = medianWindow(results, (r) => r.ack.p99);
  const byCpu = medianWindow(results, (r) => r.cpuMicrosPerBeat);
  const byMemory = medianWindow(results, (r) => r.kbPerStream);
  const errors: Record<string, number> = {};
  for (const r of results) for (const [code, count] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + count;
  return {
    ...byAck,
    errors,
    errorCount: results.reduce((sum, r) => sum + r.errorCount, 0),
    skipped: results.reduce((sum, r) => sum + r.skipped, 0),
    serverCpuPercent: byCpu.serverCpuPercent,
    cpuMicrosPerBeat: byCpu.cpuMicrosPerBeat,
    rssMiB: byMemory.rssMiB,
    kbPerStream: byMemory.kbPerStream,
    interferencePercent: Math.max(...results.map((r) => r.interferencePercent)),
    windowAttempts: results.reduce((sum, r) => sum + r.windowAttempts, 0),
    windowFigures: results.map(figuresOf),
  };
}

/**
 * The registry's event-loop delay since the scrape before `metrics`: prom-client resets its histogram at
 * every scrape. Its values are whole sampling intervals, so the 10 ms resolution is subtracted.
 */
export function loopDelaySinceLastScrape(metrics: PromText): LoopDelay {
  const lag = (name: string): number => Math.max(0, (metrics.value(name) ?? NaN) * 1000 - PROM_LOOP_RESOLUTION_MS);
  return { p50: lag("nodejs_eventloop_lag_p50_seconds"), p99: lag("nodejs_eventloop_lag_p99_seconds"), max: lag("nodejs_eventloop_lag_max_seconds") };
}

/** The registry's garbage collection between two scrapes (prom-client's nodejs_gc_duration_seconds). */
export interface GcBetween {
  readonly seconds: number;
  /** Collections that took longer than 100 ms, each a pause of the event loop that long or most of it. */
  readonly over100ms: number;
}

export function gcBetween(before: PromText, after: PromText): GcBetween {
  const delta = (name: string, labels = {}): number => after.sum(name, labels) - before.sum(name, labels);
  return {
    seconds: delta("nodejs_gc_duration_seconds_sum"),
    over100ms: delta("nodejs_gc_duration_seconds_count") - delta("nodejs_gc_duration_seconds_bucket", { le: "0.1" }),
  };
}

/** How the server and the load generator fared while reads ran beside the beats. */
export interface Meanwhile {
  /** The event-loop delays: the server's (a read stalling it) and the load generator's. */
  readonly serverLoopDelayMs: LoopDelay;
  readonly generatorLoopDelayMs: LoopDelay;
  /** The server's garbage collection. */
  readonly gc: GcBetween;
}

/** From the server's /metrics scraped before and after (nothing else scraped between) and the generator's window. */
export function meanwhile(before: PromText, after: PromText, stats: WindowStats): Meanwhile {
  return { serverLoopDelayMs: loopDelaySinceLastScrape(after), generatorLoopDelayMs: stats.loopDelayMs, gc: gcBetween(before, after) };
}

function registryMetrics(
  before: PromText,
  after: PromText,
  server0: ProcSample,
  server1: ProcSample,
  windowSeconds: number,
  dataBytes: number | undefined,
): Pick<LoadRunResult, "serverLoopDelayMs" | "serverBeats" | "persistence"> {
  const delta = (name: string, labels = {}): number => after.sum(name, labels) - before.sum(name, labels);
  const writes = delta("agent_registry_store_writes_total", { result: "ok" });
  const fileBytes = after.value("agent_registry_store_file_bytes") ?? 0;
  const io =
    server0.writeBytes === undefined || server1.writeBytes === undefined ? undefined : (server1.writeBytes - server0.writeBytes) / windowSeconds;
  return {
    serverLoopDelayMs: loopDelaySinceLastScrape(after),
    serverBeats: delta("agent_registry_heartbeats_total"),
    persistence: {
      writes,
      writesPerSecond: writes / windowSeconds,
      fileBytes,
      bytesPerSecond: (writes / windowSeconds) * fileBytes,
      ioWriteBytesPerSecond: io,
      writeSecondsPerSecond: delta("agent_registry_store_write_duration_seconds_sum") / windowSeconds,
      ...(dataBytes === undefined ? {} : { dataBytes }),
    },
  };
}

interface Window {
  readonly stats: WindowStats;
  readonly server0: ProcSample;
  readonly server1: ProcSample;
  readonly generator0: ProcSample;
  readonly generator1: ProcSample;
  readonly cores: CoreUse[];
  readonly metricsBefore: PromText | undefined;
  readonly metricsAfter: PromText | undefined;
  readonly echoDelay: LoopDelay | undefined;
  readonly interferencePercent: number;
  /** Windows measured to keep this one. */
  readonly attempts: number;
}

const disturbancesOf = (window: Window): string[] => disturbances(window.interferencePercent, window.stats.loopDelayMs.max);

/** Fewer reasons to measure again first, then less interference. */
function quieter(a: Window, b: Window): boolean {
  const reasons = disturbancesOf(a).length - disturbancesOf(b).length;
  return reasons !== 0 ? reasons < 0 : a.interferencePercent < b.interferencePercent;
}

async function measureWindow(target: Target, generator: GeneratorHandle, windowMs: number): Promise<Window> {
  const metricsBefore = target.httpUrl === undefined ? undefined : await scrape(target.httpUrl);
  const isEcho = target.kind === "echo-grpc" || target.kind === "echo-connect";
  if (isEcho) await echoLoopDelay(target);
  const others = await watchInterference([target.child.pid, generator.pid]);
  const [server0, generator0, cores0] = await Promise.all([sampleProcess(target.child.pid), sampleProcess(generator.pid), sampleCores()]);
  await generator.mark();
  await sleep(windowMs);
  const stats = await generator.collect();
  const [server1, generator1, cores1] = await Promise.all([sampleProcess(target.child.pid), sampleProcess(generator.pid), sampleCores()]);
  const interferencePercent = await others();
  const metricsAfter = target.httpUrl === undefined ? undefined : await scrape(target.httpUrl);
  const echoDelay = isEcho ? await echoLoopDelay(target) : undefined;
  return { stats, server0, server1, generator0, generator1, cores: coreUse(cores0, cores1), metricsBefore, metricsAfter, echoDelay, interferencePercent, attempts: 1 };
}

/** Asks an echo server for its event-loop delay since the last ask (and starts a new period). */
async function echoLoopDelay(target: Target): Promise<LoopDelay | undefined> {
  const line = waitForLine(target.child, /loop-delay p50=(\S+) p99=(\S+) max=(\S+)/, 5000);
  target.child.process.kill("SIGUSR2");
  try {
    const match = await line;
    return { p50: Number(match[1]), p99: Number(match[2]), max: Number(match[3]) };
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
