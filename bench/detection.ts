// Scenario 6, detection: with the whole fleet beating, a tenth of it stops sending (streams stay open). A
// WatchAgents stream timestamps each STATUS_CHANGED to OFFLINE on arrival; lateness is that time minus the
// agent's deadline (the server_time of its last ack + AGENT_TIMEOUT). Any other agent turning OFFLINE is a
// false offline. The server's own agent_registry_offline_lateness_seconds is read too.
//
// Its second run, the offline guard: more than half of the fleet stops at once (what the registry losing
// its own network looks like), with the guard's defaults. No node may turn OFFLINE while the hold lasts,
// every silent one must show liveness_held; then most of them beat again, and the few still silent must
// turn OFFLINE as soon as the share has fallen back, and no other.

import { AgentStatus, WatchEventType } from "../gen/registry/v1/registry_pb.js";
import { type LatencySummary, summarize } from "./latency.js";
import { type RunningLoad, sleep } from "./load-run.js";
import { histogramQuantile } from "./prom-text.js";
import { scrape, type WatchHandle, watchAgents } from "./registry-probe.js";

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
  /** Agents shown with liveness_held: 0, a tenth of the fleet silent is no reason for the offline guard. */
  readonly held: number;
  /** Arrival of the watch event minus (last ack's server_time + timeout), ms. */
  readonly lateness: LatencySummary;
  /** Events whose agent.last_heartbeat differs from the last ack's server_time (should be 0). */
  readonly lastHeartbeatMismatches: number;
  /** From the server's histogram (bucket interpolation), ms. */
  readonly serverLateness: { readonly p50Ms: number | undefined; readonly p99Ms: number | undefined; readonly count: number };
  readonly watchEnded: string | undefined;
}

/** OFFLINE and held agents as a WatchAgents stream reports them, read as the events arrive. */
class WatchedLiveness {
  /** First OFFLINE per agent: arrival (ms since epoch) and the event's last_heartbeat (ms). */
  readonly offline = new Map<string, { at: number; lastHeartbeat: number }>();
  /** Agents shown with liveness_held at least once. */
  readonly held = new Set<string>();
  private read = 0;

  constructor(private readonly watch: WatchHandle) {}

  drain(): void {
    const { events } = this.watch;
    for (; this.read < events.length; this.read++) {
      const { at, event } = events[this.read] as (typeof events)[number];
      const agent = event.agent;
      if (event.snapshot || agent === undefined) continue;
      if (agent.livenessHeld) this.held.add(agent.id);
      if (event.type !== WatchEventType.STATUS_CHANGED || agent.status !== AgentStatus.OFFLINE || this.offline.has(agent.id)) continue;
      const heartbeat = agent.lastHeartbeat;
      const lastHeartbeat = heartbeat === undefined ? NaN : Number(heartbeat.seconds) * 1000 + Math.floor(heartbeat.nanos / 1e6);
      this.offline.set(agent.id, { at, lastHeartbeat });
    }
  }

  /** Drains until `done` or `ms` have passed, then for `settleMs` more (to catch stragglers). */
  async waitFor(done: () => boolean, ms: number, settleMs: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && !done()) {
      await sleep(50);
      this.drain();
    }
    await sleep(settleMs);
    this.drain();
  }

  offlineOutside(expected: ReadonlySet<string>): number {
    let count = 0;
    for (const id of this.offline.keys()) if (!expected.has(id)) count++;
    return count;
  }
}

function timing(running: RunningLoad): { httpUrl: string; timeoutMs: number; intervalMs: number } {
  const { target, spec } = running;
  if (target.httpUrl === undefined) throw new Error("detection needs the registry's HTTP listener");
  if (spec.agentTimeoutS === undefined || spec.heartbeatIntervalS === undefined) throw new Error("detection needs the interval and timeout set");
  return { httpUrl: target.httpUrl, timeoutMs: spec.agentTimeoutS * 1000, intervalMs: spec.heartbeatIntervalS * 1000 };
}

function ended(watch: WatchHandle): string | undefined {
  const status = watch.ended();
  return status === undefined ? undefined : `${status.code}: ${status.details}`;
}

export async function detection(running: RunningLoad, silent: number): Promise<DetectionResult> {
  const { target, generator, spec } = running;
  const { httpUrl, timeoutMs, intervalMs } = timing(running);
  const watch = watchAgents(target.address);
  try {
    await watch.snapshot(running.fleet.streamsOpen, 60_000);
    const before = await scrape(httpUrl);
    const ids = await generator.silence(silent);
    const silenced = new Set(ids);
    const seen = new WatchedLiveness(watch);
    // Every silenced agent is due within one interval + the timeout; wait that and 3 s more, then 1 s more
    // to catch false offlines after the last true one.
    await seen.waitFor(() => seen.offline.size >= silenced.size, intervalMs + timeoutMs + 3000, 1000);
    const after = await scrape(httpUrl);
    const lastAcks = await generator.lastAcks(ids);
    const lateness: number[] = [];
    let mismatches = 0;
    ids.forEach((id, i) => {
      const offline = seen.offline.get(id);
      const lastAck = lastAcks[i];
      if (offline === undefined || lastAck === null || lastAck === undefined) return;
      lateness.push(offline.at - (lastAck + timeoutMs));
      if (offline.lastHeartbeat !== lastAck) mismatches++;
    });
    const name = "agent_registry_offline_lateness_seconds";
    const q = (quantile: number): number | undefined => {
      const value = histogramQuantile(before.buckets(name), after.buckets(name), quantile);
      return value === undefined ? undefined : value * 1000;
    };
    const detected = ids.filter((id) => seen.offline.has(id)).length;
    return {
      agents: spec.agents,
      silenced: ids.length,
      heartbeatIntervalS: intervalMs / 1000,
      agentTimeoutS: timeoutMs / 1000,
      detected,
      missed: ids.length - detected,
      falseOffline: seen.offlineOutside(silenced),
      held: seen.held.size,
      lateness: summarize(lateness),
      lastHeartbeatMismatches: mismatches,
      serverLateness: {
        p50Ms: q(0.5),
        p99Ms: q(0.99),
        count: after.sum(`${name}_count`) - before.sum(`${name}_count`),
      },
      watchEnded: ended(watch),
    };
  } finally {
    watch.close();
  }
}

export interface HoldResult {
  readonly agents: number;
  readonly silenced: number;
  readonly heartbeatIntervalS: number;
  readonly agentTimeoutS: number;
  /** How long the silence was watched before any node beat again, ms (interval + timeout + 3 s). */
  readonly heldForMs: number;
  /** OFFLINE events while the hold should last: must be 0. */
  readonly offlineDuringHold: number;
  /** Silent agents shown with liveness_held by the end of the hold. */
  readonly heldSeen: number;
  /** Scraped at the end of the hold. */
  readonly guardActive: number | undefined;
  readonly heldGauge: number | undefined;
  /** /readyz during the hold: its status and the line of its body that names the offline guard. */
  readonly readyz: { readonly status: number; readonly holdLine: string | undefined };
  /** Silent agents that beat again; the rest stay silent. */
  readonly resumed: number;
  readonly stillSilent: number;
  /** Still-silent agents seen OFFLINE after the others beat again. */
  readonly expiredAfter: number;
  /** From the moment the others may beat again to each still-silent agent's OFFLINE event, ms. */
  readonly release: LatencySummary;
  /** OFFLINE events for agents that beat again or never stopped: must be 0. */
  readonly falseOffline: number;
  /** Scraped once the still-silent agents are OFFLINE. */
  readonly guardActiveAfter: number | undefined;
  readonly heldGaugeAfter: number | undefined;
  readonly watchEnded: string | undefined;
}

async function readyz(httpUrl: string): Promise<HoldResult["readyz"]> {
  const response = await fetch(`${httpUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  return { status: response.status, holdLine: body.split("\n").find((line) => /offline guard/i.test(line)) };
}

/** Silences `silent` agents at once; after the hold has been watched, all but `stillSilent` beat again. */
export async function offlineHold(running: RunningLoad, silent: number, stillSilent: number): Promise<HoldResult> {
  const { target, generator, spec } = running;
  const { httpUrl, timeoutMs, intervalMs } = timing(running);
  const watch = watchAgents(target.address);
  try {
    await watch.snapshot(running.fleet.streamsOpen, 60_000);
    const ids = await generator.silence(silent);
    const seen = new WatchedLiveness(watch);
    // Without the guard every one of them would be OFFLINE by now (the detection run shows it).
    const heldForMs = intervalMs + timeoutMs + 3000;
    await seen.waitFor(() => false, heldForMs, 0);
    const offlineDuringHold = seen.offline.size;
    const heldSeen = ids.filter((id) => seen.held.has(id)).length;
    const during = await scrape(httpUrl);
    const ready = await readyz(httpUrl);
    // Spread over the silenced ones, as they were spread over the fleet.
    const keep = new Set(ids.filter((_, i) => Math.floor(((i + 1) * stillSilent) / ids.length) > Math.floor((i * stillSilent) / ids.length)));
    const resumedAt = Date.now();
    await generator.resume(ids.filter((id) => !keep.has(id)));
    await seen.waitFor(() => [...keep].every((id) => seen.offline.has(id)), intervalMs + timeoutMs + 3000, 1000);
    const after = await scrape(httpUrl);
    const release = [...keep].flatMap((id) => {
      const offline = seen.offline.get(id);
      return offline === undefined ? [] : [offline.at - resumedAt];
    });
    return {
      agents: spec.agents,
      silenced: ids.length,
      heartbeatIntervalS: intervalMs / 1000,
      agentTimeoutS: timeoutMs / 1000,
      heldForMs,
      offlineDuringHold,
      heldSeen,
      guardActive: during.value("agent_registry_offline_guard_active"),
      heldGauge: during.value("agent_registry_liveness_held_agents"),
      readyz: ready,
      resumed: ids.length - keep.size,
      stillSilent: keep.size,
      expiredAfter: release.length,
      release: summarize(release),
      falseOffline: seen.offlineOutside(keep),
      guardActiveAfter: after.value("agent_registry_offline_guard_active"),
      heldGaugeAfter: after.value("agent_registry_liveness_held_agents"),
      watchEnded: ended(watch),
    };
  } finally {
    watch.close();
  }
}
