// The messages between the orchestrator (run.ts) and the load generator process (load-generator.ts) over
// Node's IPC channel: one command, one reply with the same id. Plain JSON-safe data only.

import type { LatencySummary } from "./latency.js";

/** The Ollama version every simulated daemon reports (a preloaded fleet is written with it too). */
export const BENCH_OLLAMA_VERSION = "0.5.7";

/** What kind of server the fleet talks to: they differ only in which service the generator calls. */
export type TargetKind = "registry" | "echo-grpc" | "echo-connect" | "etcd";

export interface FleetSpec {
  readonly kind: TargetKind;
  /** host:port of the gRPC (or h2c) listener. */
  readonly address: string;
  readonly agents: number;
  /** grpc-js channels, each its own TCP connection; agent i uses channel i % connections. */
  readonly connections: number;
  /** Registers (or lease grants) in flight at once while the fleet is set up. */
  readonly setupConcurrency: number;
  /** etcd only: the TTL each lease is granted with, in seconds. */
  readonly leaseTtlSeconds: number;
  /** Agents the server already knows (loaded from its file): no Register, straight to the stream. */
  readonly agentIds?: readonly string[];
}

export type Command =
  | { readonly op: "fleet"; readonly spec: FleetSpec }
  | { readonly op: "steady"; readonly intervalMs: number }
  | { readonly op: "closedLoop"; readonly window: number }
  | { readonly op: "mark" }
  | { readonly op: "collect" }
  | { readonly op: "silence"; readonly count: number }
  | { readonly op: "resume"; readonly ids: readonly string[] }
  | { readonly op: "lastAcks"; readonly ids: readonly string[] }
  | { readonly op: "stormPrepare"; readonly address: string; readonly callers: number; readonly connections: number }
  | { readonly op: "stormRun"; readonly total: number }
  | { readonly op: "shutdown" };

export interface FleetReady {
  readonly setupMs: number;
  readonly streamsOpen: number;
  readonly setupErrors: Readonly<Record<string, number>>;
  /** Register (or LeaseGrant) latency while setting up, ms. */
  readonly setupLatency: LatencySummary;
}

export interface WindowStats {
  readonly windowMs: number;
  readonly sent: number;
  readonly acked: number;
  /** Beats not sent because that stream already had too many unanswered (the server fell behind). */
  readonly skipped: number;
  readonly streamsOpen: number;
  /** Ack round trip (send to ack), ms. */
  readonly latency: LatencySummary;
  /** Stream and call failures by status code name, since the fleet was set up. */
  readonly errors: Readonly<Record<string, number>>;
  /** The generator's own event-loop delay over the window, ms. */
  readonly loopDelayMs: LoopDelay;
}

export interface LoopDelay {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface StormResult {
  readonly durationMs: number;
  readonly ok: number;
  readonly latency: LatencySummary;
  readonly errors: Readonly<Record<string, number>>;
}

export type Reply =
  | { readonly ev: "ok" }
  | { readonly ev: "fleetReady"; readonly ready: FleetReady }
  | { readonly ev: "window"; readonly stats: WindowStats }
  | { readonly ev: "silenced"; readonly ids: readonly string[] }
  /** Per id: the server_time (ms) of the last ack, or null if none. */
  | { readonly ev: "lastAcks"; readonly serverTimes: readonly (number | null)[] }
  | { readonly ev: "storm"; readonly result: StormResult }
  | { readonly ev: "error"; readonly message: string };

export interface Envelope<T> {
  readonly id: number;
  readonly body: T;
}
