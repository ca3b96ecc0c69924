// The targets of the store dimension, checked from one run's numbers: the registration storm and the cold
// start at 10 000 agents for each store (json, the default, and sqlite next to it with its ratio to json at
// the same size), and sqlite's steady persistence cost flat in fleet size. Pure functions.

import type { StoreKind } from "../src/config/index.js";
import type { ColdStartCase, ColdStartReport } from "./cold-start.js";
import type { LoadRunResult } from "./load-run.js";
import type { TargetCheck } from "./results-model.js";
import { STORES } from "./store-data-dir.js";
import type { StormReport, StormTarget } from "./storm.js";

/** The fleet size the storm and cold-start targets are set at. */
export const STORE_TARGET_AGENTS = 10_000;
export const STORM_GOAL_PER_SECOND = 5000;
export const COLD_START_GOAL_MS = 250;
/** The default store's start on an empty data directory (Node itself is about 70-100 ms of it). */
export const EMPTY_COLD_START_GOAL_MS = 200;
/** sqlite's persistence bytes/s at the largest fleet may be at most this many times that at the smallest. */
export const PERSISTENCE_FLAT_FACTOR = 1.5;

const f = (value: number | undefined, digits = 1): string => (value === undefined || Number.isNaN(value) ? "n/a" : value.toFixed(digits));
const k = (value: number): string => value.toLocaleString("en-US");
const ratio = (ours: number | undefined, theirs: number | undefined): string =>
  ours === undefined || theirs === undefined ? "n/a" : `${f(ours / theirs, 2)}×`;

export interface StoreMeasured {
  readonly storms: readonly StormReport[];
  readonly coldStart: ColdStartReport | undefined;
  readonly persistence: readonly LoadRunResult[];
}

export function findStorm(storms: readonly StormReport[], against: StormTarget, registrations: number): StormReport | undefined {
  return storms.find((s) => s.against === against && s.registrations === registrations);
}

export function findColdStart(cold: ColdStartReport | undefined, store: StoreKind, agents: number): ColdStartCase | undefined {
  return cold?.cases.find((c) => c.store === store && c.agents === agents);
}

/** Block-layer bytes/s where /proc/<pid>/io could be read, else what the store says it wrote. */
export function persistenceBytesPerSecond(run: LoadRunResult | undefined): number | undefined {
  return run?.persistence?.ioWriteBytesPerSecond ?? run?.persistence?.bytesPerSecond;
}

export function checkStoreTargets(m: StoreMeasured): TargetCheck[] {
  return [...STORES.map((store) => stormTarget(m.storms, store)), emptyColdTarget(m.coldStart), ...STORES.map((store) => coldTarget(m.coldStart, store)), persistenceTarget(m.persistence)];
}

const NAMES: Readonly<Record<StoreKind, string>> = { json: "json, the default store", sqlite: "sqlite" };

function stormTarget(storms: readonly StormReport[], store: StoreKind): TargetCheck {
  const s = findStorm(storms, store, STORE_TARGET_AGENTS);
  const json = findStorm(storms, "json", STORE_TARGET_AGENTS);
  const echo = findStorm(storms, "echo-grpc", STORE_TARGET_AGENTS);
  const others = [...new Set(storms.filter((r) => r.against === store).map((r) => r.registrations))].filter((size) => size !== STORE_TARGET_AGENTS).sort((a, b) => a - b);
  const vsJson = store === "json" || json === undefined ? "" : `; json ${f(json.perSecond, 0)}/s, sqlite = ${ratio(s?.perSecond, json.perSecond)} json`;
  const elsewhere = others
    .map((size) => {
      const ours = findStorm(storms, store, size);
      const theirs = findStorm(storms, "json", size);
      return ours === undefined ? undefined : `${k(size)}: ${f(ours.perSecond, 0)}/s${store !== "json" && theirs !== undefined ? ` (${ratio(ours.perSecond, theirs.perSecond)} json)` : ""}`;
    })
    .filter((text): text is string => text !== undefined);
  return {
    target: `registration storm, ${NAMES[store]} (${k(STORE_TARGET_AGENTS)} from 500 callers, durable)`,
    goal: `≥ ${k(STORM_GOAL_PER_SECOND)}/s`,
    measured:
      s === undefined
        ? "n/a"
        : `${f(s.perSecond, 0)}/s, p99 ${f(s.latency.p99)} ms, ${s.fileWrites} writes, server ${f(s.serverCpuPercent, 0)}% / load gen ${f(s.generatorCpuPercent, 0)}% of a core${vsJson}`,
    met: s === undefined ? undefined : s.perSecond >= STORM_GOAL_PER_SECOND && s.ok === s.registrations,
    ...(s === undefined ? {} : stormNote(s, echo, elsewhere)),
  };
}

/** The other sizes, and the load generator's own ceiling (the same storm against the bare grpc-js echo). */
function stormNote(s: StormReport, echo: StormReport | undefined, elsewhere: readonly string[]): { note?: string } {
  const notes = elsewhere.length > 0 ? [`other sizes: ${elsewhere.join(", ")}`] : [];
  if (echo !== undefined) {
    const limited = s.perSecond >= 0.85 * echo.perSecond;
    notes.push(
      `the load generator reaches ${f(echo.perSecond, 0)}/s against the bare grpc-js echo${limited ? " (within 15%: the client side was the limit)" : ""}`,
    );
  }
  return notes.length === 0 ? {} : { note: notes.join("; ") };
}

function emptyColdTarget(cold: ColdStartReport | undefined): TargetCheck {
  const c = findColdStart(cold, "json", 0);
  return {
    target: `cold start on an empty data dir, ${NAMES.json} (spawn to first ListAgents, median)`,
    goal: `< ${EMPTY_COLD_START_GOAL_MS} ms`,
    measured: c === undefined || cold === undefined ? "n/a" : `${f(c.toFirstListMs.p50, 0)} ms (bare node: ${f(cold.nodeBareMs.p50, 0)} ms)`,
    met: c === undefined ? undefined : c.toFirstListMs.p50 < EMPTY_COLD_START_GOAL_MS,
  };
}

function coldTarget(cold: ColdStartReport | undefined, store: StoreKind): TargetCheck {
  const c = findColdStart(cold, store, STORE_TARGET_AGENTS);
  const json = findColdStart(cold, "json", STORE_TARGET_AGENTS);
  const empty = findColdStart(cold, store, 0);
  const vsJson = store === "json" || json === undefined ? "" : `; json ${f(json.toFirstListMs.p50, 0)} ms, sqlite = ${ratio(c?.toFirstListMs.p50, json.toFirstListMs.p50)} json`;
  const larger = (cold?.cases ?? [])
    .filter((x) => x.store === store && x.agents > STORE_TARGET_AGENTS)
    .map((x) => {
      const theirs = findColdStart(cold, "json", x.agents);
      return `${k(x.agents)} agents: ${f(x.toFirstListMs.p50, 0)} ms${store !== "json" && theirs !== undefined ? ` (${ratio(x.toFirstListMs.p50, theirs.toFirstListMs.p50)} json)` : ""}`;
    });
  return {
    target: `cold start with ${k(STORE_TARGET_AGENTS)} agents, ${NAMES[store]} (spawn to first ListAgents, median)`,
    goal: `< ${COLD_START_GOAL_MS} ms`,
    measured:
      c === undefined || cold === undefined
        ? "n/a"
        : `${f(c.toFirstListMs.p50, 0)} ms (empty: ${f(empty?.toFirstListMs.p50, 0)} ms, bare node: ${f(cold.nodeBareMs.p50, 0)} ms)${vsJson}`,
    met: c === undefined ? undefined : c.toFirstListMs.p50 < COLD_START_GOAL_MS,
    ...(c !== undefined && larger.length > 0 ? { note: larger.join(", ") } : {}),
  };
}

function persistenceTarget(runs: readonly LoadRunResult[]): TargetCheck {
  const of = (store: StoreKind): LoadRunResult[] => runs.filter((r) => r.store === store).sort((a, b) => a.agents - b.agents);
  const sqlite = of("sqlite");
  const json = of("json");
  const [first, last] = [sqlite[0], sqlite.at(-1)];
  // With three sizes or more, the step between the two largest too (sqlite's beat writes are bounded: its
  // cost grows with the fleet only until 512 rows a second are due).
  const middle = sqlite.length >= 3 ? sqlite.at(-2) : undefined;
  const measured = first !== undefined && last !== undefined && first !== last;
  const [a, b] = [persistenceBytesPerSecond(first), persistenceBytesPerSecond(last)];
  const kb = (value: number | undefined): string => `${f((value ?? NaN) / 1024, 1)} KB/s`;
  const jsonFirst = json.find((r) => r.agents === first?.agents);
  const jsonLast = json.find((r) => r.agents === last?.agents);
  const baseline =
    jsonFirst === undefined || jsonLast === undefined
      ? ""
      : `; json ${kb(persistenceBytesPerSecond(jsonFirst))} → ${kb(persistenceBytesPerSecond(jsonLast))} = ${ratio(persistenceBytesPerSecond(jsonLast), persistenceBytesPerSecond(jsonFirst))}; sqlite = ${ratio(b, persistenceBytesPerSecond(jsonLast))} json at ${k(jsonLast.agents)}`;
  const cadence = first?.load.kind === "steady" ? `every agent beating every ${f(first.load.intervalMs / 1000, 0)} s` : "steady beats";
  return {
    target: `steady persistence cost flat in fleet size, sqlite (block-layer bytes/s, ${cadence})`,
    goal: `largest fleet ≤ ${PERSISTENCE_FLAT_FACTOR}× the smallest`,
    measured: !measured ? "n/a" : `${kb(a)} at ${k(first.agents)} → ${kb(b)} at ${k(last.agents)} = ${ratio(b, a)}${baseline}`,
    met: !measured || a === undefined || b === undefined ? undefined : b <= PERSISTENCE_FLAT_FACTOR * a,
    ...(middle === undefined || last === undefined ? {} : { note: `from ${k(middle.agents)} to ${k(last.agents)}: ${ratio(b, persistenceBytesPerSecond(middle))}` }),
  };
}
