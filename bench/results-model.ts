// The shape of one run's results (bench/results/*.json), the ratios against the baselines, and the check
// of each target the issue sets (the store dimension's in store-targets.ts). Pure functions over the
// measured numbers.

import type { ColdStartReport } from "./cold-start.js";
import type { ProfileSummary } from "./cpu-profile.js";
import type { DetectionResult, HoldResult } from "./detection.js";
import type { LoadRunResult } from "./load-run.js";
import type { ReadsResult } from "./reads.js";
import type { ReadHeavyResult } from "./read-heavy.js";
import type { StormReport } from "./storm.js";
import { checkStoreTargets } from "./store-targets.js";

export interface Machine {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memGiB: number;
  readonly node: string;
  readonly kernel: string;
  readonly clockTicks: number;
  readonly pinned: boolean;
  readonly etcd: string | undefined;
}

export interface Comparison {
  readonly what: string;
  readonly agents: number;
  readonly connections: number;
  readonly ours: number;
  readonly theirs: number;
  readonly ratio: number;
}

export interface TargetCheck {
  readonly target: string;
  readonly goal: string;
  readonly measured: string;
  /** undefined: not measured in this run. */
  readonly met: boolean | undefined;
  readonly note?: string;
}

export interface BenchResults {
  /** 2: the store dimension (storms, cold-start cases and persistence runs per store and fleet size). */
  readonly version: 2;
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly command: string;
  readonly quick: boolean;
  readonly machine: Machine;
  readonly notes: readonly string[];
  readonly steady: readonly LoadRunResult[];
  readonly ceiling: readonly LoadRunResult[];
  readonly reads: ReadsResult | undefined;
  /** 20 load balancers and 20 watchers on the largest steady run; absent in results written before it existed. */
  readonly readHeavy?: ReadHeavyResult | undefined;
  /** The registration storm, per store and size. */
  readonly storms: readonly StormReport[];
  /** Cold start, per store and size (0: empty). */
  readonly coldStart: ColdStartReport | undefined;
  /** Steady-state persistence cost, per store and size. */
  readonly persistence: readonly LoadRunResult[];
  readonly detection: { readonly run: LoadRunResult; readonly result: DetectionResult } | undefined;
  /** The offline guard's run; absent in results written before it existed. */
  readonly offlineHold?: { readonly run: LoadRunResult; readonly result: HoldResult } | undefined;
  /** The --profile run (preloaded fleet, under the profiler: slower than the steady runs). */
  readonly profiled: LoadRunResult | undefined;
  readonly profiles: readonly ProfileSummary[];
  readonly comparisons: readonly Comparison[];
  readonly targets: readonly TargetCheck[];
}

type Measured = Omit<BenchResults, "comparisons" | "targets">;

function find(rows: readonly LoadRunResult[], target: string, agents: number, connections?: number): LoadRunResult | undefined {
  return rows.find((r) => r.target === target && r.agents === agents && (connections === undefined || r.connections === connections));
}

/** Ours against each baseline, per fleet size: CPU per beat, ack p99, RSS per stream (etcd: total RSS too). */
export function compare(steady: readonly LoadRunResult[], ceiling: readonly LoadRunResult[]): Comparison[] {
  const out: Comparison[] = [];
  const push = (what: string, ours: LoadRunResult, theirs: LoadRunResult, pick: (r: LoadRunResult) => number): void => {
    out.push({ what, agents: ours.agents, connections: ours.connections, ours: pick(ours), theirs: pick(theirs), ratio: pick(ours) / pick(theirs) });
  };
  for (const ours of steady.filter((r) => r.target === "registry")) {
    const echo = find(steady, "echo-grpc", ours.agents, ours.connections);
    const connect = find(steady, "echo-connect", ours.agents, ours.connections);
    const etcd = find(steady, "etcd", ours.agents, ours.connections);
    if (echo !== undefined) {
      push("CPU µs/beat vs grpc-js echo", ours, echo, (r) => r.cpuMicrosPerBeat);
      push("ack p99 ms vs grpc-js echo", ours, echo, (r) => r.ack.p99);
      push("KB/stream vs grpc-js echo", ours, echo, (r) => r.kbPerStream);
    }
    if (connect !== undefined && echo !== undefined) {
      push("connect-node echo CPU µs/beat vs grpc-js echo", connect, echo, (r) => r.cpuMicrosPerBeat);
      push("connect-node echo KB/stream vs grpc-js echo", connect, echo, (r) => r.kbPerStream);
    }
    if (etcd !== undefined) {
      push("CPU µs/beat vs etcd µs/keepalive", ours, etcd, (r) => r.cpuMicrosPerBeat);
      push("ack p99 ms vs etcd", ours, etcd, (r) => r.ack.p99);
      push("RSS MiB vs etcd", ours, etcd, (r) => r.rssMiB);
    }
  }
  const ours = ceiling.find((r) => r.target === "registry");
  if (ours !== undefined) {
    for (const other of ceiling.filter((r) => r.target !== "registry")) {
      push(`ceiling beats/s vs ${other.label}`, ours, other, (r) => r.beatsPerSecond);
      push(`ceiling CPU µs/beat vs ${other.label}`, ours, other, (r) => r.cpuMicrosPerBeat);
    }
  }
  return out;
}

const f = (value: number | undefined, digits = 1): string => (value === undefined || Number.isNaN(value) ? "n/a" : value.toFixed(digits));

/** Server CPU per beat may be at most this many times the bare grpc-js echo's, memory per stream this many. */
export const CPU_PER_BEAT_GOAL = 1.25;
export const KB_PER_STREAM_GOAL = 1.3;
/** 5 000 agents, each on its own connection (how node daemons connect). */
const REALISTIC_SHAPE_AGENTS = 5000;

/** CPU per beat and memory per stream against the echo, and CPU against etcd, at one shape of the fleet. */
function shapeTargets(m: Measured, agents: number, connections: number): TargetCheck[] {
  const ours = find(m.steady, "registry", agents, connections);
  const echo = find(m.steady, "echo-grpc", agents, connections);
  const etcd = find(m.steady, "etcd", agents, connections);
  const shape = `${agents.toLocaleString("en-US")} agents on ${connections === agents ? "a connection each" : `${connections.toLocaleString("en-US")} connections`}`;
  const windows = ours?.windowFigures === undefined ? "" : ` (medians of ${ours.windowFigures.length} windows)`;
  return [
    {
      target: `server CPU per beat vs bare grpc-js echo (${shape})`,
      goal: `≤ ${CPU_PER_BEAT_GOAL}×`,
      measured: ours === undefined || echo === undefined ? "n/a" : `${f(ours.cpuMicrosPerBeat)} vs ${f(echo.cpuMicrosPerBeat)} µs = ${f(ours.cpuMicrosPerBeat / echo.cpuMicrosPerBeat, 2)}×${windows}`,
      met: ours === undefined || echo === undefined ? undefined : ours.cpuMicrosPerBeat <= CPU_PER_BEAT_GOAL * echo.cpuMicrosPerBeat,
    },
    {
      target: `RSS per stream vs bare grpc-js echo (${shape})`,
      goal: `≤ ${KB_PER_STREAM_GOAL}×`,
      measured: ours === undefined || echo === undefined ? "n/a" : `${f(ours.kbPerStream)} vs ${f(echo.kbPerStream)} KB = ${f(ours.kbPerStream / echo.kbPerStream, 2)}×${windows}`,
      met: ours === undefined || echo === undefined ? undefined : ours.kbPerStream <= KB_PER_STREAM_GOAL * echo.kbPerStream,
    },
    {
      target: `CPU per beat vs etcd per keepalive (${shape})`,
      goal: "lower",
      measured: ours === undefined || etcd === undefined ? "n/a" : `${f(ours.cpuMicrosPerBeat)} vs ${f(etcd.cpuMicrosPerBeat)} µs${windows}`,
      met: ours === undefined || etcd === undefined ? undefined : ours.cpuMicrosPerBeat < etcd.cpuMicrosPerBeat,
    },
  ];
}

export function checkTargets(m: Measured, fleetAgents: number, fleetConnections: number): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ours = find(m.steady, "registry", fleetAgents, fleetConnections);
  const etcd = find(m.steady, "etcd", fleetAgents, fleetConnections);
  const n = `${fleetAgents.toLocaleString("en-US")} agents`;
  checks.push({
    target: `${n} at 1 beat/s sustained, 0 errors`,
    goal: `≥ ${fleetAgents * 0.99} beats/s, 0 errors`,
    measured: ours === undefined ? "n/a" : `${f(ours.beatsPerSecond, 0)} beats/s, ${ours.errorCount} errors`,
    met: ours === undefined ? undefined : ours.beatsPerSecond >= fleetAgents * 0.99 && ours.errorCount === 0 && ours.skipped === 0,
  });
  checks.push({
    target: `ack p99 at ${n}`,
    goal: "< 50 ms",
    measured: ours === undefined ? "n/a" : `${f(ours.ack.p99)} ms`,
    met: ours === undefined ? undefined : ours.ack.p99 < 50,
  });
  checks.push(...shapeTargets(m, fleetAgents, fleetConnections));
  const ceiling = m.ceiling.find((r) => r.target === "registry");
  checks.push({
    target: "ceiling on one server core (1 000 streams, closed loop)",
    goal: "≥ 20 000 beats/s",
    measured:
      ceiling === undefined
        ? "n/a"
        : `${f(ceiling.beatsPerSecond, 0)} beats/s at ${f(ceiling.serverCpuPercent, 0)}% server CPU (${f(1e6 / ceiling.cpuMicrosPerBeat, 0)}/s at 100%)`,
    met: ceiling === undefined ? undefined : ceiling.beatsPerSecond >= 20_000,
    ...(ceiling !== undefined && ceiling.serverCpuPercent < 90
      ? { note: `the server was not saturated (${f(ceiling.serverCpuPercent, 0)}% of its core; load generator ${f(ceiling.generatorCpuPercent, 0)}%): the client side was the limit` }
      : {}),
  });
  checks.push({
    target: `ack p99 vs etcd keepalive p99 (${n})`,
    goal: "lower",
    measured: ours === undefined || etcd === undefined ? "n/a" : `${f(ours.ack.p99)} vs ${f(etcd.ack.p99)} ms`,
    met: ours === undefined || etcd === undefined ? undefined : ours.ack.p99 < etcd.ack.p99,
  });
  // The realistic connection shape: every agent on its own connection.
  if (find(m.steady, "registry", REALISTIC_SHAPE_AGENTS, REALISTIC_SHAPE_AGENTS) !== undefined && fleetAgents !== REALISTIC_SHAPE_AGENTS) {
    checks.push(...shapeTargets(m, REALISTIC_SHAPE_AGENTS, REALISTIC_SHAPE_AGENTS));
  }
  checks.push(...checkStoreTargets(m));
  checks.push({
    target: `ListAgents page of 1 000 over gRPC during steady load (${m.reads?.agents.toLocaleString("en-US") ?? "10 000"} agents)`,
    goal: "p99 < 10 ms",
    measured: m.reads === undefined ? "n/a" : `p50 ${f(m.reads.grpcPage.latency.p50)} ms, p99 ${f(m.reads.grpcPage.latency.p99)} ms`,
    met: m.reads === undefined ? undefined : m.reads.grpcPage.latency.p99 < 10,
  });
  checks.push({
    target: "ListAgents page of 1 000 over gRPC during steady load, median",
    goal: "p50 < 3 ms",
    measured: m.reads === undefined ? "n/a" : `p50 ${f(m.reads.grpcPage.latency.p50)} ms`,
    met: m.reads === undefined ? undefined : m.reads.grpcPage.latency.p50 < 3,
  });
  checks.push({
    target: "full list over Connect JSON during steady load",
    goal: "p50 < 60 ms",
    measured: m.reads === undefined ? "n/a" : `p50 ${f(m.reads.connectFull.latency.p50)} ms (${f(m.reads.connectFull.bytes / 1e6, 2)} MB)`,
    met: m.reads === undefined ? undefined : m.reads.connectFull.latency.p50 < 60,
  });
  const without = ours?.ack.p99;
  checks.push({
    target: "beat ack p99 while those reads run, vs the same run without reads",
    goal: "≤ 1.5×",
    measured: m.reads === undefined || without === undefined ? "n/a" : `${f(m.reads.ackDuringReads.p99)} vs ${f(without)} ms = ${f(m.reads.ackDuringReads.p99 / without, 2)}×`,
    met: m.reads === undefined || without === undefined ? undefined : m.reads.ackDuringReads.p99 <= 1.5 * without,
  });
  const heavy = m.readHeavy;
  checks.push({
    target: "read-heavy: beat ack p99 with 20 balancers (ready=true, 1/s) and 20 watchers, vs without",
    goal: "≤ 1.5×",
    measured: heavy === undefined || without === undefined ? "n/a" : `${f(heavy.ackDuringReads.p99)} vs ${f(without)} ms = ${f(heavy.ackDuringReads.p99 / without, 2)}×`,
    met: heavy === undefined || without === undefined ? undefined : heavy.ackDuringReads.p99 <= 1.5 * without,
  });
  checks.push({
    target: "read-heavy: no watcher falls behind",
    goal: "0 cut off, 0 events missing",
    measured: heavy === undefined ? "n/a" : `${heavy.watchersCutOff} cut off, ${heavy.eventsMissing}/${heavy.eventsExpected} missing, lag p99 ${f(heavy.watchLag.p99)} ms`,
    met: heavy === undefined ? undefined : heavy.watchersCutOff === 0 && heavy.eventsMissing === 0,
  });
  const d = m.detection?.result;
  checks.push({
    target: "detection: every silent agent OFFLINE within 1 s past its deadline",
    goal: "max ≤ 1 000 ms, none missed",
    measured: d === undefined ? "n/a" : `p50 ${f(d.lateness.p50, 0)} / p99 ${f(d.lateness.p99, 0)} / max ${f(d.lateness.max, 0)} ms; ${d.detected}/${d.silenced} seen`,
    met: d === undefined ? undefined : d.missed === 0 && d.lateness.max <= 1000,
  });
  checks.push({
    target: "detection: false offlines among the agents still beating",
    goal: "0",
    measured: d === undefined ? "n/a" : String(d.falseOffline),
    met: d === undefined ? undefined : d.falseOffline === 0,
  });
  checks.push({
    target: "detection: a tenth of the fleet silent is no reason to hold (offline guard on, defaults)",
    goal: "0 held",
    measured: d === undefined ? "n/a" : `${d.held} held`,
    met: d === undefined ? undefined : d.held === 0,
  });
  const h = m.offlineHold?.result;
  checks.push({
    target: "offline guard: more than half of the fleet silent at once turns nobody OFFLINE, every silent node held",
    goal: "0 OFFLINE, all held",
    measured: h === undefined ? "n/a" : `${h.offlineDuringHold} OFFLINE in ${f(h.heldForMs / 1000, 0)} s; ${h.heldSeen}/${h.silenced} held`,
    met: h === undefined ? undefined : h.offlineDuringHold === 0 && h.heldSeen === h.silenced,
  });
  checks.push({
    target: "offline guard: once most beat again, the still-silent nodes are OFFLINE within one interval + 1 s, and no other",
    goal: `all, max ≤ ${h === undefined ? "interval + 1 000" : f(h.heartbeatIntervalS * 1000 + 1000, 0)} ms, 0 false`,
    measured: h === undefined ? "n/a" : `${h.expiredAfter}/${h.stillSilent}, p50 ${f(h.release.p50, 0)} / max ${f(h.release.max, 0)} ms; ${h.falseOffline} false`,
    met: h === undefined ? undefined : h.expiredAfter === h.stillSilent && h.release.max <= h.heartbeatIntervalS * 1000 + 1000 && h.falseOffline === 0,
  });
  const small = m.steady.filter((r) => r.target === "registry" && r.persistence !== undefined).sort((a, b) => a.agents - b.agents);
  const first = small[0];
  const last = small.at(-1);
  checks.push({
    target: "persistence writes/s flat from the smallest to the largest fleet (steady beats, json)",
    goal: "writes/s does not grow with the fleet",
    measured:
      first?.persistence === undefined || last?.persistence === undefined || first === last
        ? "n/a"
        : `${f(first.persistence.writesPerSecond, 2)}/s at ${first.agents} → ${f(last.persistence.writesPerSecond, 2)}/s at ${last.agents}`,
    met:
      first?.persistence === undefined || last?.persistence === undefined || first === last
        ? undefined
        : last.persistence.writesPerSecond <= Math.max(1.25 * first.persistence.writesPerSecond, 1.1),
  });
  return checks;
}
