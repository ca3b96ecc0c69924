// The store dimension's tables in the report, json and sqlite side by side at each fleet size: the
// registration storm, the cold start and the steady persistence cost, each sqlite row with its ratio to json.

import type { ColdStartReport } from "./cold-start.js";
import type { LoadRunResult } from "./load-run.js";
import { INTERFERENCE_LIMIT } from "./interference.js";
import { connections, errors, f, n, table } from "./markdown.js";
import { findColdStart, findStorm, persistenceBytesPerSecond } from "./store-targets.js";
import type { StormReport, StormTarget } from "./storm.js";

const MB = (bytes: number | undefined): string => (bytes === undefined ? "n/a" : `${f(bytes / 1e6, 2)} MB`);
const KB = (bytes: number | undefined): string => (bytes === undefined ? "n/a" : bytes >= 100 * 1024 ? n(bytes / 1024) : f(bytes / 1024, 1));
const times = (ours: number | undefined, theirs: number | undefined): string =>
  ours === undefined || theirs === undefined || theirs === 0 ? "—" : `${f(ours / theirs, 2)}×`;
const others = (percent: number): string => (percent > INTERFERENCE_LIMIT ? `**${f(percent, 0)}**` : f(percent, 0));

const order = (against: StormTarget): number => ["json", "sqlite", "echo-grpc"].indexOf(against);

export function stormTable(storms: readonly StormReport[]): string {
  const rows = [...storms].sort((a, b) => a.registrations - b.registrations || order(a.against) - order(b.against));
  return table(
    ["registrations", "server", "callers / connections", "ok", "registrations/s", "× json", "p50 ms", "p99 ms", "max ms", "errors", "store writes", "registrations/write", "time in writes s", "block-layer writes", "store files after", "server CPU %", "load gen CPU %", "others' CPU %"],
    rows.map((s) => [
      n(s.registrations),
      s.against === "echo-grpc" ? "bare grpc-js echo" : `agent-registry, ${s.against}`,
      `${s.callers} / ${s.connections}`,
      n(s.ok),
      n(s.perSecond),
      s.against === "json" ? "—" : times(s.perSecond, findStorm(storms, "json", s.registrations)?.perSecond),
      f(s.latency.p50),
      f(s.latency.p99),
      f(s.latency.max, 0),
      Object.keys(s.errors).length === 0 ? "0" : JSON.stringify(s.errors),
      ...(s.against === "echo-grpc"
        ? ["—", "—", "—", MB(s.ioWriteBytes), "—"]
        : [n(s.fileWrites), f(s.registrationsPerWrite, 0), f(s.writeSeconds, 2), MB(s.ioWriteBytes), MB(s.finalFileBytes)]),
      f(s.serverCpuPercent, 0),
      f(s.generatorCpuPercent, 0),
      others(s.interferencePercent),
    ]),
  );
}

export function coldStartTable(cold: ColdStartReport): string {
  const cases = [...cold.cases].sort((a, b) => a.agents - b.agents || a.store.localeCompare(b.store));
  return table(
    ["data", "store", "store files", "spawn → start line ms", "spawn → first ListAgents ms", "× json"],
    [
      ["bare `node -e` (Node itself)", "—", "—", f(cold.nodeBareMs.p50, 0), "—", "—"],
      ...cases.map((c) => [
        c.agents === 0 ? "empty data dir" : `${n(c.agents)} agents`,
        c.store,
        c.agents === 0 ? "—" : MB(c.dataBytes),
        f(c.toStartLineMs.p50, 0),
        f(c.toFirstListMs.p50, 0),
        c.store === "json" ? "—" : times(c.toFirstListMs.p50, findColdStart(cold, "json", c.agents)?.toFirstListMs.p50),
      ]),
    ],
  );
}

export function persistenceTable(runs: readonly LoadRunResult[]): string {
  const rows = [...runs].sort((a, b) => a.agents - b.agents || (a.store ?? "").localeCompare(b.store ?? ""));
  const smallest = (store: string | undefined): LoadRunResult | undefined => rows.find((r) => r.store === store);
  return table(
    ["agents", "connections", "store", "beats/s", "errors", "store writes/s", "time in writes %", "last write", "store KB/s", "block-layer KB/s", "× json", "× smallest", "store files", "server CPU %", "µs CPU/beat", "ack p99 ms", "server loop delay p99 / max ms", "others' CPU %"],
    rows.map((r) => {
      const q = r.persistence;
      const bytes = persistenceBytesPerSecond(r);
      const json = rows.find((x) => x.store === "json" && x.agents === r.agents);
      const first = smallest(r.store);
      return [
        n(r.agents),
        connections(r),
        r.store ?? "json",
        n(r.beatsPerSecond),
        errors(r),
        f(q?.writesPerSecond, 2),
        f(q === undefined ? undefined : q.writeSecondsPerSecond * 100, 1),
        q === undefined ? "n/a" : `${KB(q.fileBytes)} KB`,
        KB(q?.bytesPerSecond),
        KB(q?.ioWriteBytesPerSecond),
        r.store === "json" ? "—" : times(bytes, persistenceBytesPerSecond(json)),
        first === r ? "—" : times(bytes, persistenceBytesPerSecond(first)),
        MB(q?.dataBytes),
        f(r.serverCpuPercent, 0),
        f(r.cpuMicrosPerBeat, 1),
        f(r.ack.p99, 1),
        r.serverLoopDelayMs === undefined ? "—" : `${f(r.serverLoopDelayMs.p99, 1)} / ${f(r.serverLoopDelayMs.max, 0)}`,
        others(r.interferencePercent),
      ];
    }),
  );
}
