// `npm run bench [-- --quick]`: measures agent-registry against a bare grpc-js echo, a bare connect-node
// echo and etcd on this machine, and its json store against its sqlite store, in one run, and writes
// bench/results/<time>.json, bench/results/latest.json and (full runs) the generated block of BENCHMARKS.md.
// Every process it starts is killed when it ends, also on failure or Ctrl-C. See BENCHMARKS.md for what
// each scenario measures.

import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import type { StoreKind } from "../src/config/index.js";
import { coldStart } from "./cold-start.js";
import { type BenchContext, createContext } from "./context.js";
import { type ProfileSummary, summarizeProfiles } from "./cpu-profile.js";
import { detection, offlineHold } from "./detection.js";
import { type EtcdBinary, findEtcd } from "./etcd.js";
import { type LoadRunResult, type LoadRunSpec, type RunningLoad, loadRun } from "./load-run.js";
import { BENCHMARKS_MD, RESULTS_DIR, SERVER_CLI } from "./paths.js";
import { CLOCK_TICKS } from "./proc-stats.js";
import { GENERATOR_CORE, PINNING, ProcessGroup, pinSelf } from "./processes.js";
import type { LoopDelay, TargetKind } from "./protocol.js";
import { type InventoryCostResult, inventoryCost, inventoryTable } from "./inventory-cost.js";
import { readsUnderLoad } from "./reads.js";
import { readHeavy } from "./read-heavy.js";
import { markdownReport } from "./report.js";
import { type BenchResults, type Machine, checkTargets, compare } from "./results-model.js";
import { STORES } from "./store-data-dir.js";
import { storePersistence } from "./store-persistence.js";
import { type StormReport, registrationStorm } from "./storm.js";

const SCENARIOS = ["steady", "ceiling", "storm", "reads", "read-heavy", "cold", "detection", "persistence", "inventory"] as const;
type Scenario = (typeof SCENARIOS)[number];
const KINDS: readonly TargetKind[] = ["registry", "echo-grpc", "echo-connect", "etcd"];
/** Fleet sizes of the store dimension (storm, cold start, persistence). */
const FULL_SIZES = [1000, 10_000, 50_000];
const QUICK_SIZES = [1000, 10_000];

interface Options {
  readonly quick: boolean;
  readonly only: ReadonlySet<Scenario>;
  readonly targets: readonly TargetKind[];
  /** The stores and fleet sizes of the store dimension (storm, cold, persistence). */
  readonly stores: readonly StoreKind[];
  readonly sizes: readonly number[] | undefined;
  readonly profile: boolean;
  /** Where the .cpuprofile files go and stay (to open in Chrome DevTools); else a temp dir, removed. */
  readonly profileDir: string | undefined;
  readonly writeDoc: boolean;
  /** A run of some scenarios only: its name in `latest-<name>.json`, so it never replaces a whole run's. */
  readonly partial: string | undefined;
  /** --report=FILE: measure nothing; print the report of a results file (and with --doc, rewrite the block). */
  readonly reportFrom: string | undefined;
}

const USAGE = `usage: npm run bench -- [--quick] [--only=${SCENARIOS.join(",")}] [--targets=${KINDS.join(",")}]
                     [--stores=${STORES.join(",")}] [--sizes=N,...] [--profile[=DIR]] [--doc|--no-doc]
  --quick     about 5 minutes: fewer fleet sizes and baselines, shorter windows
  --only      run only these scenarios ("reads" rides on the registry's largest steady run)
  --targets   servers to measure in the steady and ceiling scenarios (default: all; etcd is skipped if unavailable)
  --stores    stores to measure in the storm, cold and persistence scenarios (default: both)
  --sizes     fleet sizes of the storm, cold and persistence scenarios (default: ${FULL_SIZES.join(",")}; quick: ${QUICK_SIZES.join(",")})
  --profile   add runs under node --cpu-prof (not measured): the largest fleet preloaded from agents.json
              (no Registers in the profile) with its reads, one more storm per store (10 000, or the
              largest size), one more cold start per store (largest size) and one more persistence run
              per store (largest size); summarise the profiles (top frames by self time); with
              =DIR the .cpuprofile files are kept there (open them in Chrome DevTools)
  --doc       rewrite the generated block of BENCHMARKS.md (default for a full run of every scenario)
  --report=FILE  measure nothing: print the report of a results file (bench/results/*.json); with --doc,
              rewrite the generated block from it`;

function parseOptions(argv: readonly string[]): Options {
  let quick = false;
  let profile = false;
  let profileDir: string | undefined;
  let doc: boolean | undefined;
  let only: Set<Scenario> = new Set(SCENARIOS);
  let targets: TargetKind[] = [...KINDS];
  let stores: StoreKind[] = [...STORES];
  let sizes: number[] | undefined;
  let reportFrom: string | undefined;
  for (const arg of argv) {
    const [key, value] = arg.split("=", 2) as [string, string | undefined];
    if (key === "--quick") quick = true;
    else if (key === "--profile") {
      profile = true;
      profileDir = value;
    }
    else if (key === "--doc") doc = true;
    else if (key === "--no-doc") doc = false;
    else if (key === "--only" && value !== undefined) only = new Set(parseList(value, SCENARIOS, "--only"));
    else if (key === "--targets" && value !== undefined) targets = parseList(value, KINDS, "--targets");
    else if (key === "--no-etcd") targets = targets.filter((t) => t !== "etcd");
    else if (key === "--stores" && value !== undefined) stores = parseList(value, STORES, "--stores");
    else if (key === "--sizes" && value !== undefined) sizes = parseSizes(value);
    else if (key === "--report" && value !== undefined) reportFrom = value;
    else {
      process.stderr.write(`unknown argument ${arg}\n${USAGE}\n`);
      process.exit(arg === "--help" || arg === "-h" ? 0 : 2);
    }
  }
  if (profileDir !== undefined && existsSync(profileDir) && readdirSync(profileDir).length > 0) {
    process.stderr.write(`--profile=${profileDir}: not empty; give a new or empty directory for this run's profiles\n`);
    process.exit(2);
  }
  const everything = only.size === SCENARIOS.length && targets.length === KINDS.length && stores.length === STORES.length && sizes === undefined;
  const partial = everything ? undefined : [...only].join("+");
  // The block is rewritten by default only by a full run of every scenario, never by --report.
  const writeDoc = doc ?? (reportFrom === undefined && !quick && everything);
  return { quick, only, targets, stores, sizes, profile, profileDir, writeDoc, partial, reportFrom };
}

function parseSizes(value: string): number[] {
  const sizes = value.split(",").filter((item) => item !== "").map(Number);
  if (sizes.length === 0 || sizes.some((size) => !Number.isInteger(size) || size < 1 || size > 100_000)) {
    process.stderr.write(`--sizes: fleet sizes are whole numbers from 1 to 100000, comma-separated (${value})\n`);
    process.exit(2);
  }
  return [...new Set(sizes)].sort((a, b) => a - b);
}

function parseList<T extends string>(value: string, allowed: readonly T[], flag: string): T[] {
  const items = value.split(",").filter((item) => item !== "");
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      process.stderr.write(`${flag}: unknown ${item}; one of ${allowed.join(", ")}\n`);
      process.exit(2);
    }
  }
  return items as T[];
}

/**
 * Windows of the steady runs whose ratios are targets (5 000 agents a connection each, 10 000 on 10): CPU
 * per beat, memory per stream and the ack tail swing with where the collector is in a window, so a full
 * run reports the median of this many (a quick run, of two at 10 000 on 10).
 */
const SWINGING_WINDOWS = 3;

/** The plan: what a full run measures, and the smaller quick one. */
function plan(quick: boolean, sizes: readonly number[] | undefined) {
  return {
    // Quick: the largest fleet against every baseline but the connect-node echo (slow to set up), and the
    // small one against the registry only (for the persistence comparison).
    steady: quick
      ? [
          { agents: 1000, connections: 1000, kinds: ["registry"] as TargetKind[] },
          { agents: 10_000, connections: 10, kinds: ["registry", "echo-grpc", "etcd"] as TargetKind[], windows: 2 },
        ]
      : [
          { agents: 1000, connections: 1000, kinds: KINDS },
          { agents: 5000, connections: 5000, kinds: KINDS, windows: SWINGING_WINDOWS },
          { agents: 10_000, connections: 10, kinds: KINDS, windows: SWINGING_WINDOWS },
        ],
    warmupMs: quick ? 2000 : 5000,
    windowMs: quick ? 4000 : 20_000,
    ceiling: { agents: 1000, connections: 4, window: 1, kinds: quick ? (["registry", "echo-grpc"] as TargetKind[]) : KINDS },
    reads: { pageCalls: quick ? 60 : 300, fullCalls: quick ? 5 : 20, rounds: quick ? 2 : 3 },
    readHeavy: { balancers: 20, watchers: 20, seconds: quick ? 5 : 20, registersPerSecond: 10 },
    // The store dimension: each store at each size.
    sizes: sizes ?? (quick ? QUICK_SIZES : FULL_SIZES),
    storm: { callers: 500 },
    cold: { runs: quick ? 3 : 5 },
    // Every agent beats once per heartbeat interval; the window holds whole flush intervals.
    persistence: { heartbeatIntervalS: 5, flushes: quick ? 2 : 4 },
    // A tenth of the fleet goes silent (exact detection); then, with a fresh fleet, 60 % at once (the offline
    // guard's default threshold is half), of which all but a tenth of the fleet beat again.
    detection: {
      agents: 10_000,
      connections: 10,
      silent: 1000,
      hold: { silent: 6000, stillSilent: 1000 },
      heartbeatIntervalS: 1,
      agentTimeoutS: 3,
      windowMs: quick ? 2000 : 10_000,
    },
  };
}

function machine(etcd: EtcdBinary | undefined): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  return {
    nproc: cpus().length,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memGiB: totalmem() / 1024 ** 3,
    node: process.version,
    kernel: release(),
    clockTicks: CLOCK_TICKS,
    pinned: PINNING,
    etcd: etcd?.version,
  };
}

/** "loop delay p99/max server a/b load gen c/d ms", for the progress lines. */
function loopDelays(server: LoopDelay | undefined, generator: LoopDelay): string {
  const pair = (delay: LoopDelay): string => `${delay.p99.toFixed(0)}/${delay.max.toFixed(0)}`;
  return `loop delay p99/max server ${server === undefined ? "n/a" : pair(server)} load gen ${pair(generator)} ms`;
}

function describe(r: LoadRunResult): string {
  return (
    `${r.label}: ${Math.round(r.beatsPerSecond)} beats/s, ack p50 ${r.ack.p50.toFixed(2)} p99 ${r.ack.p99.toFixed(1)} max ${r.ack.max.toFixed(0)} ms, ` +
    `server CPU ${r.serverCpuPercent.toFixed(0)}% = ${r.cpuMicrosPerBeat.toFixed(1)} µs/beat, RSS ${r.rssMiB.toFixed(0)} MiB ` +
    `(${r.kbPerStream.toFixed(1)} KB/stream), errors ${r.errorCount}, ${loopDelays(r.serverLoopDelayMs, r.generatorLoopDelayMs)}, load gen CPU ${r.generatorCpuPercent.toFixed(0)}%`
  );
}

function describePersistence(r: LoadRunResult): string {
  const q = r.persistence;
  if (q === undefined) return "no persistence numbers (no /metrics)";
  return (
    `store ${r.store ?? "?"}: ${q.writes} writes (${q.writesPerSecond.toFixed(2)}/s, ${(q.writeSecondsPerSecond * 100).toFixed(1)}% of the time writing), ` +
    `last write ${(q.fileBytes / 1024).toFixed(0)} KB, store ${(q.bytesPerSecond / 1024).toFixed(1)} KB/s, ` +
    `block layer ${q.ioWriteBytesPerSecond === undefined ? "n/a" : `${(q.ioWriteBytesPerSecond / 1024).toFixed(1)} KB/s`}, files ${((q.dataBytes ?? 0) / 1e6).toFixed(2)} MB`
  );
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const p = plan(options.quick, options.sizes);
  const started = Date.now();
  const log = (line: string): void => {
    process.stdout.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  };
  if (options.reportFrom !== undefined) {
    await publish(JSON.parse(readFileSync(options.reportFrom, "utf8")) as BenchResults, options.writeDoc, log);
    return;
  }
  try {
    readFileSync(SERVER_CLI);
  } catch {
    throw new Error(`${SERVER_CLI} is missing: build first (npm run bench builds it)`);
  }
  pinSelf(GENERATOR_CORE);
  const processes = new ProcessGroup();
  const tmp = mkdtempSync(join(tmpdir(), "agent-registry-bench-"));
  const cleanup = (): void => {
    processes.killAll();
    rmSync(tmp, { recursive: true, force: true });
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      cleanup();
      process.stderr.write(`\nbench stopped by ${signal}; every process it started was killed\n`);
      process.exit(130);
    });
  }
  const notes: string[] = [];
  try {
    let etcd: EtcdBinary | undefined;
    if (options.targets.includes("etcd")) {
      const found = findEtcd(log);
      if (typeof found === "string") {
        notes.push(`etcd skipped: ${found}`);
        log(`etcd skipped: ${found}`);
      } else {
        etcd = found;
        log(`etcd ${found.version} at ${found.path}`);
      }
    }
    const targets = options.targets.filter((t) => t !== "etcd" || etcd !== undefined);
    const profileDir = options.profile ? resolve(options.profileDir ?? join(tmp, "profiles")) : undefined;
    if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });
    const ctx: BenchContext = createContext({ processes, tmp, etcd, quick: options.quick, profileDir, log });
    if (!PINNING) notes.push("taskset or a second core is missing: server and load generator share the CPU, so the numbers are pessimistic");

    const steady: LoadRunResult[] = [];
    let reads: BenchResults["reads"];
    let heavy: BenchResults["readHeavy"];
    const largest = p.steady.at(-1);
    const anyReads = options.only.has("reads") || options.only.has("read-heavy");
    // The reads chosen, run with the largest fleet still beating (and again in the profile run).
    const theReads = async (running: RunningLoad) => ({
      reads: options.only.has("reads") ? await readsUnderLoad(running, p.reads.pageCalls, p.reads.fullCalls, p.reads.rounds, log) : undefined,
      heavy: options.only.has("read-heavy") ? await readHeavy(running, p.readHeavy) : undefined,
    });
    if (options.only.has("steady") || anyReads) {
      for (const config of p.steady) {
        for (const kind of targets.filter((k) => config.kinds.includes(k))) {
          const isReads = kind === "registry" && config === largest && anyReads;
          if (!options.only.has("steady") && !isReads) continue;
          const spec: LoadRunSpec = {
            name: `steady-${kind}-${config.agents}x${config.connections}`,
            target: kind,
            agents: config.agents,
            connections: config.connections,
            load: { kind: "steady", intervalMs: 1000 },
            warmupMs: p.warmupMs,
            windowMs: p.windowMs,
            // The connect-node echo is there to show the listener split, not for a ratio to the tenth.
            ...("windows" in config && kind !== "echo-connect" ? { windows: config.windows } : {}),
          };
          log(`steady: ${config.agents} agents on ${config.connections} connections → ${kind}${spec.windows === undefined ? "" : ` (${spec.windows} windows, medians)`} ...`);
          try {
            const { result, extra } = await loadRun(ctx, spec, isReads ? theReads : undefined);
            steady.push(result);
            log(`  ${describe(result)}`);
            if (extra?.reads !== undefined) {
              reads = extra.reads;
              log(`  reads: page of 1000 p50 ${reads.grpcPage.latency.p50.toFixed(2)} p99 ${reads.grpcPage.latency.p99.toFixed(2)} ms; full list (Connect JSON) p50 ${reads.connectFull.latency.p50.toFixed(0)} ms; ack p99 ${reads.ackDuringReads.p99.toFixed(1)} ms; ${loopDelays(reads.serverLoopDelayMs, reads.generatorLoopDelayMs)}`);
            }
            if (extra?.heavy !== undefined) {
              heavy = extra.heavy;
              log(
                `  read-heavy: ${heavy.spec.balancers} balancers p50 ${heavy.lists.latency.p50.toFixed(1)} p99 ${heavy.lists.latency.p99.toFixed(1)} ms; ack p99 ${heavy.ackDuringReads.p99.toFixed(1)} ms ` +
                  `(${result.ack.p99.toFixed(1)} without); watch lag p99 ${heavy.watchLag.p99.toFixed(1)} ms, ${heavy.eventsMissing} missing, ${heavy.watchersCutOff} cut off; ${loopDelays(heavy.serverLoopDelayMs, heavy.generatorLoopDelayMs)}`,
              );
            }
          } catch (error) {
            notes.push(`steady ${spec.name} failed: ${(error as Error).message.split("\n")[0]}`);
            log(`  FAILED: ${(error as Error).message}`);
          }
        }
      }
    }

    // The profile run: the largest fleet preloaded from agents.json (no 10 000 durable Registers in the
    // profile), beating for a long window, then the reads chosen; under node --cpu-prof.
    let profiled: LoadRunResult | undefined;
    if (options.profile && largest !== undefined && (options.only.has("steady") || anyReads)) {
      const spec: LoadRunSpec = {
        name: `profile-registry-${largest.agents}x${largest.connections}`,
        target: "registry",
        agents: largest.agents,
        connections: largest.connections,
        load: { kind: "steady", intervalMs: 1000 },
        warmupMs: p.warmupMs,
        windowMs: options.quick ? 10_000 : 30_000,
        profile: true,
        preload: true,
      };
      log(`profile: ${spec.agents} preloaded agents on ${spec.connections} connections → registry under --cpu-prof, then reads ...`);
      try {
        const { result } = await loadRun(ctx, spec, theReads);
        profiled = result;
        log(`  ${describe(result)}`);
      } catch (error) {
        notes.push(`profile run failed: ${(error as Error).message.split("\n")[0]}`);
        log(`  FAILED: ${(error as Error).message}`);
      }
    }

    const ceiling: LoadRunResult[] = [];
    if (options.only.has("ceiling")) {
      for (const kind of p.ceiling.kinds.filter((k) => targets.includes(k))) {
        const spec: LoadRunSpec = {
          name: `ceiling-${kind}`,
          target: kind,
          agents: p.ceiling.agents,
          connections: p.ceiling.connections,
          load: { kind: "closed", window: p.ceiling.window },
          warmupMs: p.warmupMs,
          windowMs: Math.min(p.windowMs, 10_000),
        };
        log(`ceiling: ${spec.agents} streams on ${spec.connections} connections, closed loop → ${kind} ...`);
        try {
          const { result } = await loadRun(ctx, spec);
          ceiling.push(result);
          log(`  ${describe(result)}`);
        } catch (error) {
          notes.push(`ceiling ${kind} failed: ${(error as Error).message.split("\n")[0]}`);
          log(`  FAILED: ${(error as Error).message}`);
        }
      }
    }

    const storms: StormReport[] = [];
    if (options.only.has("storm")) {
      for (const registrations of p.sizes) {
        for (const store of options.stores) {
          log(`storm: ${registrations} Registers from ${p.storm.callers} callers → ${store} store ...`);
          try {
            const storm = await registrationStorm(ctx, { against: store, registrations, callers: p.storm.callers, profile: false });
            storms.push(storm);
            log(
              `  ${Math.round(storm.perSecond)}/s, p50 ${storm.latency.p50.toFixed(1)} p99 ${storm.latency.p99.toFixed(1)} ms, ${storm.fileWrites} store writes ` +
                `(${storm.writeSeconds.toFixed(2)} s writing), server CPU ${storm.serverCpuPercent.toFixed(0)}%, load gen CPU ${storm.generatorCpuPercent.toFixed(0)}%, errors ${JSON.stringify(storm.errors)}`,
            );
          } catch (error) {
            notes.push(`storm ${store} ${registrations} failed: ${(error as Error).message.split("\n")[0]}`);
            log(`  FAILED: ${(error as Error).message}`);
          }
        }
      }
      // The load generator's own ceiling, at the size the targets are set at (or the largest).
      const registrations = p.sizes.includes(10_000) ? 10_000 : (p.sizes.at(-1) as number);
      log(`storm: ${registrations} Registers from ${p.storm.callers} callers → bare grpc-js echo (the load generator's ceiling) ...`);
      try {
        const storm = await registrationStorm(ctx, { against: "echo-grpc", registrations, callers: p.storm.callers, profile: false });
        storms.push(storm);
        log(`  ${Math.round(storm.perSecond)}/s, p50 ${storm.latency.p50.toFixed(1)} p99 ${storm.latency.p99.toFixed(1)} ms, echo CPU ${storm.serverCpuPercent.toFixed(0)}%, load gen CPU ${storm.generatorCpuPercent.toFixed(0)}%`);
      } catch (error) {
        notes.push(`storm echo-grpc ${registrations} failed: ${(error as Error).message.split("\n")[0]}`);
        log(`  FAILED: ${(error as Error).message}`);
      }
      if (options.profile) {
        for (const store of options.stores) {
          log(`  storm once more under node --cpu-prof (for the profile only): ${registrations} → ${store} ...`);
          await registrationStorm(ctx, { against: store, registrations, callers: p.storm.callers, profile: true }).catch((error: unknown) => {
            notes.push(`profiled storm ${store} failed: ${(error as Error).message.split("\n")[0]}`);
          });
        }
      }
    }

    let cold: BenchResults["coldStart"];
    if (options.only.has("cold")) {
      log(`cold start: ${options.stores.join(" and ")} stores with ${p.sizes.join(", ")} agents and empty, ${p.cold.runs} starts each ...`);
      try {
        cold = await coldStart(ctx, options.stores, p.sizes, p.cold.runs);
        for (const c of cold.cases) {
          log(`  ${c.store}, ${c.agents} agents (${(c.dataBytes / 1e6).toFixed(2)} MB): start line ${c.toStartLineMs.p50.toFixed(0)} ms, first ListAgents ${c.toFirstListMs.p50.toFixed(0)} ms`);
        }
        log(`  bare node ${cold.nodeBareMs.p50.toFixed(0)} ms`);
      } catch (error) {
        notes.push(`cold start failed: ${(error as Error).message.split("\n")[0]}`);
        log(`  FAILED: ${(error as Error).message}`);
      }
    }

    const persistence: LoadRunResult[] = [];
    if (options.only.has("persistence")) {
      const { heartbeatIntervalS, flushes } = p.persistence;
      for (const agents of p.sizes) {
        for (const store of options.stores) {
          log(`persistence: ${agents} agents beating every ${heartbeatIntervalS} s → ${store} store, ${flushes} flush intervals ...`);
          try {
            const run = await storePersistence(ctx, { store, agents, heartbeatIntervalS, flushes });
            persistence.push(run);
            log(`  ${describe(run)}`);
            log(`  ${describePersistence(run)}`);
          } catch (error) {
            notes.push(`persistence ${store} ${agents} failed: ${(error as Error).message.split("\n")[0]}`);
            log(`  FAILED: ${(error as Error).message}`);
          }
        }
      }
      if (options.profile) {
        const agents = p.sizes.at(-1) as number;
        for (const store of options.stores) {
          log(`  persistence once more under node --cpu-prof (for the profile only): ${agents} → ${store} ...`);
          await storePersistence(ctx, { store, agents, heartbeatIntervalS, flushes, profile: true }).catch((error: unknown) => {
            notes.push(`profiled persistence ${store} failed: ${(error as Error).message.split("\n")[0]}`);
          });
        }
      }
    }

    let detected: BenchResults["detection"];
    let held: BenchResults["offlineHold"];
    if (options.only.has("detection")) {
      const d = p.detection;
      const run = <T>(name: string, measure: (running: RunningLoad) => Promise<T>): Promise<{ result: LoadRunResult; extra: T | undefined }> =>
        loadRun(
          ctx,
          {
            name,
            target: "registry",
            agents: d.agents,
            connections: d.connections,
            load: { kind: "steady", intervalMs: d.heartbeatIntervalS * 1000 },
            warmupMs: (d.agentTimeoutS + 1) * 1000,
            windowMs: d.windowMs,
            heartbeatIntervalS: d.heartbeatIntervalS,
            agentTimeoutS: d.agentTimeoutS,
          },
          measure,
        );
      log(`detection: ${d.agents} agents, interval ${d.heartbeatIntervalS} s, timeout ${d.agentTimeoutS} s; ${d.silent} go silent ...`);
      try {
        const { result, extra } = await run("detection", (running) => detection(running, d.silent));
        if (extra !== undefined) {
          detected = { run: result, result: extra };
          log(`  ${extra.detected}/${extra.silenced} OFFLINE, late p50 ${extra.lateness.p50.toFixed(0)} p99 ${extra.lateness.p99.toFixed(0)} max ${extra.lateness.max.toFixed(0)} ms, false offlines ${extra.falseOffline}, held ${extra.held}`);
        }
      } catch (error) {
        notes.push(`detection failed: ${(error as Error).message.split("\n")[0]}`);
        log(`  FAILED: ${(error as Error).message}`);
      }
      log(`offline guard: ${d.agents} agents; ${d.hold.silent} go silent at once, then all but ${d.hold.stillSilent} beat again ...`);
      try {
        const { result, extra } = await run("offline-hold", (running) => offlineHold(running, d.hold.silent, d.hold.stillSilent));
        if (extra !== undefined) {
          held = { run: result, result: extra };
          log(
            `  ${extra.offlineDuringHold} OFFLINE during the hold, ${extra.heldSeen}/${extra.silenced} held; then ${extra.expiredAfter}/${extra.stillSilent} OFFLINE ` +
              `p50 ${extra.release.p50.toFixed(0)} max ${extra.release.max.toFixed(0)} ms after the others beat again, false offlines ${extra.falseOffline}`,
          );
        }
      } catch (error) {
        notes.push(`offline hold failed: ${(error as Error).message.split("\n")[0]}`);
        log(`  FAILED: ${(error as Error).message}`);
      }
    }

    let inventory: InventoryCostResult | undefined;
    if (options.only.has("inventory")) {
      log(`inventory: the cost of a 16-GPU, 200-model inventory per Register and per beat with a change ...`);
      try {
        inventory = await inventoryCost(ctx, options.stores, options.quick);
        log(`  table for BENCHMARKS.md:\n${inventoryTable(inventory)}`);
      } catch (error) {
        notes.push(`inventory failed: ${(error as Error).message.split("\n")[0]}`);
        log(`  FAILED: ${(error as Error).message}`);
      }
    }

    const profiles: ProfileSummary[] = [];
    if (profileDir !== undefined) {
      const perStore = options.stores.flatMap((store) => [`storm-${store}`, `cold-start-${store}`, `persistence-${store}-${p.sizes.at(-1) ?? 0}-profile`]);
      for (const name of [profiled?.name, ...perStore].filter((n): n is string => n !== undefined)) {
        profiles.push(...(await summarizeProfiles(join(profileDir, name))));
      }
    }

    const measured = {
      version: 2 as const,
      startedAt: new Date(started).toISOString(),
      durationSeconds: (Date.now() - started) / 1000,
      command,
      quick: options.quick,
      machine: machine(etcd),
      notes,
      steady,
      ceiling,
      reads,
      readHeavy: heavy,
      storms,
      coldStart: cold,
      persistence,
      detection: detected,
      offlineHold: held,
      inventory,
      profiled,
      profiles,
    };
    const results: BenchResults = {
      ...measured,
      comparisons: compare(steady, ceiling),
      targets: checkTargets(measured, largest?.agents ?? 10_000, largest?.connections ?? 10),
    };
    // The results first: a report that cannot be made loses no run (--report=FILE makes it again).
    await writeResults(results, options, log);
    await publish(results, options.writeDoc, log);
  } finally {
    await processes.stopAll(3000).catch(() => undefined);
    cleanup();
  }
}

async function writeResults(results: BenchResults, options: Options, log: (line: string) => void): Promise<void> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const suffix = options.quick ? "-quick" : "";
  const stamp = results.startedAt.replace(/[:.]/g, "-");
  const json = `${JSON.stringify(results, null, 2)}\n`;
  await writeFile(join(RESULTS_DIR, `${stamp}${suffix}.json`), json);
  const latest = `latest${options.partial === undefined ? "" : `-${options.partial}`}${suffix}.json`;
  await writeFile(join(RESULTS_DIR, latest), json);
  log(`results: bench/results/${stamp}${suffix}.json and bench/results/${latest}`);
}

/** Prints the report of `results`, and with `writeDoc` puts it in BENCHMARKS.md's generated block. */
async function publish(results: BenchResults, writeDoc: boolean, log: (line: string) => void): Promise<void> {
  const report = markdownReport(results);
  process.stdout.write(`\n${report}\n`);
  if (!writeDoc) return;
  await updateGeneratedBlock(BENCHMARKS_MD, "bench:generated", report);
  log("BENCHMARKS.md: generated block rewritten");
}

/** Replaces what lies between <!-- NAME:start --> and <!-- NAME:end --> (appends the block if missing). */
async function updateGeneratedBlock(path: string, name: string, content: string): Promise<void> {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const text = await readFile(path, "utf8").catch(() => "# Benchmarks\n");
  const block = `${start}\n${content}\n${end}`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  const next = from >= 0 && to > from ? `${text.slice(0, from)}${block}${text.slice(to + end.length)}` : `${text.trimEnd()}\n\n${block}\n`;
  await writeFile(path, next);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
