// Prometheus metrics for one server (its own prom-client Registry, so tests can run many servers): agents
// by status and the cap on them, streams, the offline guard and the interval told, beats, RPCs by method and code with latency, store writes, liveness transitions,
// how late OFFLINE fired, and Node's defaults (event-loop lag among them).

import { status as GrpcStatus } from "@grpc/grpc-js";
import * as prom from "prom-client";
import type { RegistryStats } from "../registry/registry.js";
import type { RegistryObserver, Transition } from "../registry/transitions.js";
import type { StoreObserver } from "../registry/store.js";
import type { LimitName, RefusalCounter } from "./limit-log.js";

/** Which listener served a call: the gRPC port (grpc-js) or the HTTP port (connect-node). */
export type Listener = "grpc" | "http";

export class ServerMetrics implements RegistryObserver, StoreObserver, RefusalCounter {
  readonly registry = new prom.Registry();
  private readonly beats: prom.Counter;
  private readonly rpcs: prom.Counter<"method" | "listener" | "code">;
  private readonly rpcDuration: prom.Histogram<"method" | "listener">;
  private readonly storeWrites: prom.Counter<"result">;
  private readonly storeWriteDuration: prom.Histogram;
  private readonly storeFileBytes: prom.Gauge;
  private readonly transitions: prom.Counter<"from" | "to" | "reason">;
  private readonly offlineLateness: prom.Histogram;
  private readonly refusals: prom.Counter<"limit">;

  constructor(maxAgents: number, stats: () => RegistryStats) {
    const registers = [this.registry];
    prom.collectDefaultMetrics({ register: this.registry });
    new prom.Gauge({
      name: "agent_registry_max_agents",
      help: "Agents the registry holds at most (REGISTRY_MAX_AGENTS); a Register of a new id past it is refused.",
      registers,
    }).set(maxAgents);
    new prom.Gauge({
      name: "agent_registry_agents",
      help: "Agents in the registry, by status.",
      labelNames: ["status"],
      registers,
      collect() {
        const now = stats();
        this.set({ status: "online" }, now.online);
        this.set({ status: "offline" }, now.offline);
      },
    });
    new prom.Gauge({
      name: "agent_registry_heartbeat_streams",
      help: "Open Heartbeat streams.",
      registers,
      collect() {
        this.set(stats().streams);
      },
    });
    new prom.Gauge({
      name: "agent_registry_watchers",
      help: "Open WatchAgents streams.",
      registers,
      collect() {
        this.set(stats().watchers);
      },
    });
    new prom.Gauge({
      name: "agent_registry_offline_guard_active",
      help: "1 while the offline guard holds timeouts (too many nodes fell silent at once), else 0.",
      registers,
      collect() {
        this.set(stats().guardActive ? 1 : 0);
      },
    });
    new prom.Gauge({
      name: "agent_registry_liveness_held_agents",
      help: "Agents past their timeout that the offline guard keeps ONLINE (liveness_held).",
      registers,
      collect() {
        this.set(stats().held);
      },
    });
    new prom.Gauge({
      name: "agent_registry_heartbeat_interval_seconds",
      help: "The heartbeat interval told to agents now (longer than configured past REGISTRY_MAX_BEATS_PER_SECOND).",
      registers,
      collect() {
        this.set(stats().toldIntervalMs / 1000);
      },
    });
    this.beats = new prom.Counter({ name: "agent_registry_heartbeats_total", help: "Beats received.", registers });
    this.rpcs = new prom.Counter({
      name: "agent_registry_rpcs_total",
      help: "RPCs finished, by method, listener and status code.",
      labelNames: ["method", "listener", "code"],
      registers,
    });
    this.rpcDuration = new prom.Histogram({
      name: "agent_registry_rpc_duration_seconds",
      help: "Latency of unary RPCs.",
      labelNames: ["method", "listener"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.storeWrites = new prom.Counter({
      name: "agent_registry_store_writes_total",
      help: "Writes of the store (agents.json or registry.db), by result (ok, error).",
      labelNames: ["result"],
      registers,
    });
    this.storeWriteDuration = new prom.Histogram({
      name: "agent_registry_store_write_duration_seconds",
      help: "Time to make one write of the store durable (json: encode, write, fsync, rename, fsync of the directory; sqlite: one transaction and its fsync).",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.storeFileBytes = new prom.Gauge({
      name: "agent_registry_store_file_bytes",
      help: "Bytes of the last write: agents.json's size, or the rows registry.db was given.",
      registers,
    });
    this.transitions = new prom.Counter({
      name: "agent_registry_liveness_transitions_total",
      help: "Agent status changes, by from, to (absent: not registered) and reason.",
      labelNames: ["from", "to", "reason"],
      registers,
    });
    this.offlineLateness = new prom.Histogram({
      name: "agent_registry_offline_lateness_seconds",
      help: "How long after its deadline a silent agent was marked OFFLINE.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    });
    this.refusals = new prom.Counter({
      name: "agent_registry_limit_refusals_total",
      help: "Requests and streams refused (or ended) by a resource limit, by limit.",
      labelNames: ["limit"],
      registers,
    });
  }

  refused(limit: LimitName): void {
    this.refusals.inc({ limit });
  }

  beat(): void {
    this.beats.inc();
  }

  /**
   * One finished RPC, with its gRPC status code (Connect's codes are the same numbers); `seconds` for
   * unary calls (a stream's length says nothing about the server).
   */
  rpc(method: string, listener: Listener, code: number, seconds?: number): void {
    this.rpcs.inc({ method, listener, code: GrpcStatus[code] ?? String(code) });
    if (seconds !== undefined) this.rpcDuration.observe({ method, listener }, seconds);
  }

  transition(transition: Transition): void {
    this.transitions.inc({ from: transition.from, to: transition.to, reason: transition.reason });
    if (transition.lateMs !== undefined) this.offlineLateness.observe(transition.lateMs / 1000);
  }

  written(outcome: { ok: boolean; durationMs: number; bytes: number }): void {
    this.storeWrites.inc({ result: outcome.ok ? "ok" : "error" });
    this.storeWriteDuration.observe(outcome.durationMs / 1000);
    if (outcome.ok) this.storeFileBytes.set(outcome.bytes);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
