// Scenario 6, detection: with the whole fleet beating, every tenth agent stops sending (its stream stays
// open). A WatchAgents stream timestamps each STATUS_CHANGED to OFFLINE on arrival; lateness is that time
// minus the agent's deadline (the server_time of its last ack + AGENT_TIMEOUT). Any other agent turning
// OFFLINE is a false offline. The server's own agent_registry_offline_lateness_seconds is read too.

import { AgentStatus, WatchEventType } from "../gen/registry/v1/registry_pb.js";
import { type LatencySummary, summarize } from "./latency.js";
import { type RunningLoad, sleep } from "./load-run.js";
import { histogramQuantile } from "./prom-text.js";
import { scrape, watchAgents } from "./registry-probe.js";

export interface DetectionResult {
  readonly agents: number;
  readonly silenced: number;
  readonly heartbeatIntervalS: number;
  readonly agentTimeoutS: number;
  readonly detected: number;
  /** Silenced agents never seen OFFLINE within the wait. */
  readonly missed: number;
  /** OFFLINE events for agents that kept beating: must be 0. */
  readonly falseOffline: number;
  /** Arrival of the watch event minus (last ack's server_time + timeout), ms. */
  readonly lateness: LatencySummary;
  /** Events whose agent.last_heartbeat differs from the last ack's server_time (should be 0). */
  readonly lastHeartbeatMismatches: number;
  /** From the server's histogram (bucket interpolation), ms. */
  readonly serverLateness: { readonly p50Ms: number | undefined; readonly p99Ms: number | undefined; readonly count: number };
  readonly watchEnded: string | undefined;
}

export async function detection(running: RunningLoad, every: number): Promise<DetectionResult> {
  const { target, generator, spec } = running;
  if (target.httpUrl === undefined) throw new Error("detection needs the registry's HTTP listener");
  if (spec.agentTimeoutS === undefined || spec.heartbeatIntervalS === undefined) throw new Error("detection needs the interval and timeout set");
  const timeoutMs = spec.agentTimeoutS * 1000;
  const intervalMs = spec.heartbeatIntervalS * 1000;
  const watch = watchAgents(target.address);
  try {
    await watch.snapshot(running.fleet.streamsOpen, 60_000);
    const before = await scrape(target.httpUrl);
    const ids = await generator.silence(every);
    const silenced = new Set(ids);
    const offline = new Map<string, { at: number; lastHeartbeat: number }>();
    let falseOffline = 0;
    let read = 0;
    const drain = (): void => {
      for (; read < watch.events.length; read++) {
        const { at, event } = watch.events[read] as (typeof watch.events)[number];
        if (event.snapshot || event.type !== WatchEventType.STATUS_CHANGED || event.agent?.status !== AgentStatus.OFFLINE) continue;
        const id = event.agent.id;
        if (!silenced.has(id)) falseOffline++;
        else if (!offline.has(id)) {
          const heartbeat = event.agent.lastHeartbeat;
          const lastHeartbeat = heartbeat === undefined ? NaN : Number(heartbeat.seconds) * 1000 + Math.floor(heartbeat.nanos / 1e6);
          offline.set(id, { at, lastHeartbeat });
        }
      }
    };
    // Every silenced agent is due within one interval + the timeout; wait that and 3 s more, then 1 s more
    // to catch false offlines after the last true one.
    const until = Date.now() + intervalMs + timeoutMs + 3000;
    while (Date.now() < until && offline.size < silenced.size) {
      await sleep(50);
      drain();
    }
    await sleep(1000);
    drain();
    const after = await scrape(target.httpUrl);
    const lastAcks = await generator.lastAcks(ids);
    const lateness: number[] = [];
    let mismatches = 0;
    ids.forEach((id, i) => {
      const seen = offline.get(id);
      const lastAck = lastAcks[i];
      if (seen === undefined || lastAck === null || lastAck === undefined) return;
      lateness.push(seen.at - (lastAck + timeoutMs));
      if (seen.lastHeartbeat !== lastAck) mismatches++;
    });
    const name = "agent_registry_offline_lateness_seconds";
    const q = (quantile: number): number | undefined => {
      const value = histogramQuantile(before.buckets(name), after.buckets(name), quantile);
      return value === undefined ? undefined : value * 1000;
    };
    const status = watch.ended();
    return {
      agents: spec.agents,
      silenced: ids.length,
      heartbeatIntervalS: intervalMs / 1000,
      agentTimeoutS: timeoutMs / 1000,
      detected: offline.size,
      missed: ids.length - offline.size,
      falseOffline,
      lateness: summarize(lateness),
      lastHeartbeatMismatches: mismatches,
      serverLateness: {
        p50Ms: q(0.5),
        p99Ms: q(0.99),
        count: after.sum(`${name}_count`) - before.sum(`${name}_count`),
      },
      watchEnded: status === undefined ? undefined : `${status.code}: ${status.details}`,
    };
  } finally {
    watch.close();
  }
}
