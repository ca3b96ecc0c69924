// Scenario 8, steady-state persistence cost of one store: N agents preloaded into the store (no Registers),
// each beating once per heartbeat interval (HEARTBEAT_INTERVAL=5, beats every 5 s: a realistic cadence,
// 6x the production default's rate), measured over a window of whole flush intervals that starts half an
// interval after a store write. What it costs is the load run's: block-layer bytes, the store's writes and
// their time from /metrics, and the server's CPU per beat. The question: does it stay flat as N grows?

import type { StoreKind } from "../src/config/index.js";
import type { BenchContext } from "./context.js";
import { type LoadRunResult, loadRun } from "./load-run.js";

export interface StorePersistenceSpec {
  readonly store: StoreKind;
  readonly agents: number;
  /** HEARTBEAT_INTERVAL, and how often each agent beats; beat times go to the store once per interval. */
  readonly heartbeatIntervalS: number;
  /** Whole flush intervals in the window. */
  readonly flushes: number;
  /** Run the server under node --cpu-prof (into the context's profile directory, <name>-profile). */
  readonly profile?: boolean;
}

/** Streams per connection: 1 000, as the steady scenario's largest fleet has them. */
const STREAMS_PER_CONNECTION = 1000;

export async function storePersistence(ctx: BenchContext, spec: StorePersistenceSpec): Promise<LoadRunResult> {
  const intervalMs = spec.heartbeatIntervalS * 1000;
  const { result } = await loadRun(ctx, {
    name: `persistence-${spec.store}-${spec.agents}${spec.profile === true ? "-profile" : ""}`,
    target: "registry",
    store: spec.store,
    agents: spec.agents,
    connections: Math.max(1, Math.ceil(spec.agents / STREAMS_PER_CONNECTION)),
    load: { kind: "steady", intervalMs },
    // The flush of the set-up's first beats and two of the steady beats before anything is measured: a
    // large fleet's set-up leaves a backlog the server works off first.
    warmupMs: 2 * intervalMs + 2000,
    windowMs: spec.flushes * intervalMs,
    windowOffsetAfterWriteMs: intervalMs / 2,
    heartbeatIntervalS: spec.heartbeatIntervalS,
    agentTimeoutS: 60,
    preload: true,
    ...(spec.profile === true ? { profile: true } : {}),
  });
  return result;
}
