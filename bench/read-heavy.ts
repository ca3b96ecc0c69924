// Scenario 4b, read-heavy: with the fleet still beating, 20 load balancers each ask for the agents they may
// route to (ListAgents ready=true, the whole list over Connect JSON) once a second, and 20 WatchAgents
// streams follow the fleet while new agents register (10/s). Measured: the beats' ack round trips (against
// the same run's window without reads), the list calls, and each watcher's lag behind the Register acks;
// a watcher cut off (its stream ended) is counted, not hidden.

import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { AgentRegistry, RegisterRequestSchema } from "../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../src/grpc-service-definition.js";
import { type LatencySummary, summarize } from "./latency.js";
import { type Meanwhile, type RunningLoad, meanwhile, sleep } from "./load-run.js";
import { cpuPercent, sampleProcess } from "./proc-stats.js";
import { type WatchHandle, listConnectJson, scrape, watchAgents } from "./registry-probe.js";

const SERVICE = grpcServiceDefinition(AgentRegistry);

export interface ReadHeavySpec {
  readonly balancers: number;
  readonly watchers: number;
  readonly seconds: number;
  /** New agents registered per second while the watchers follow. */
  readonly registersPerSecond: number;
}

/** With the server's and the load generator's event loops, and the server's GC, while the reads ran. */
export interface ReadHeavyResult extends Meanwhile {
  readonly agents: number;
  readonly spec: ReadHeavySpec;
  readonly lists: { readonly calls: number; readonly agentsReturned: number; readonly bytes: number; readonly latency: LatencySummary };
  /** Ack round trips of the beats while balancers and watchers ran. */
  readonly ackDuringReads: LatencySummary;
  readonly beatsPerSecond: number;
  /** Time for every watcher to have its snapshot of the fleet. */
  readonly snapshotMs: number;
  /** A new agent's ADDED event arrival at each watcher minus its Register ack. */
  readonly watchLag: LatencySummary;
  readonly eventsExpected: number;
  readonly eventsMissing: number;
  readonly watchersCutOff: number;
  readonly serverCpuPercent: number;
  readonly errors: number;
}

export async function readHeavy(running: RunningLoad, spec: ReadHeavySpec): Promise<ReadHeavyResult> {
  const { target, generator } = running;
  if (target.httpUrl === undefined) throw new Error("the read-heavy scenario needs the registry's HTTP listener");
  const httpUrl = target.httpUrl;
  const watchers: WatchHandle[] = [];
  const registrar = new grpc.Client(target.address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  let errors = 0;
  try {
    const openedAt = performance.now();
    for (let i = 0; i < spec.watchers; i++) watchers.push(watchAgents(target.address));
    await Promise.all(watchers.map((watcher) => watcher.snapshot(running.spec.agents, 120_000)));
    const snapshotMs = performance.now() - openedAt;

    const metrics0 = await scrape(httpUrl);
    await generator.mark();
    const s0 = await sampleProcess(target.child.pid);
    const until = performance.now() + spec.seconds * 1000;
    const lists: number[] = [];
    let listBytes = 0;
    let agentsReturned = 0;
    let counting = false;
    const balancer = async (offsetMs: number): Promise<void> => {
      await sleep(offsetMs);
      while (performance.now() < until) {
        const t0 = performance.now();
        try {
          // ready=true, the whole list: what a load balancer routes by. One answer is decoded, to count.
          const first = !counting;
          counting = true;
          const answer = await listConnectJson(httpUrl, { ready: true }, first);
          lists.push(performance.now() - t0);
          listBytes = answer.bytes;
          if (first) agentsReturned = (JSON.parse(answer.body ?? "{}") as { agents?: unknown[] }).agents?.length ?? 0;
        } catch {
          errors++;
        }
        await sleep(Math.max(0, 1000 - (performance.now() - t0)));
      }
    };
    const acks = new Map<string, number>();
    const registrations = (async () => {
      for (let n = 0; performance.now() < until; n++) {
        const t0 = performance.now();
        const hostname = `read-heavy-${n.toString().padStart(5, "0")}`;
        try {
          await register(registrar, hostname);
          acks.set(hostname, Date.now());
        } catch {
          errors++;
        }
        await sleep(Math.max(0, 1000 / spec.registersPerSecond - (performance.now() - t0)));
      }
    })();
    await Promise.all([...Array.from({ length: spec.balancers }, (_, i) => balancer((i * 1000) / spec.balancers)), registrations]);
    const s1 = await sampleProcess(target.child.pid);
    const stats = await generator.collect();
    const metrics1 = await scrape(httpUrl);
    // Events still under way when the window ended get a few seconds to arrive before they count as missing.
    await sleep(3000);

    const lags: number[] = [];
    let missing = 0;
    for (const watcher of watchers) {
      const seen = new Map<string, number>();
      for (const { at, event } of watcher.events) {
        if (!event.snapshot && event.agent !== undefined && acks.has(event.agent.hostname)) seen.set(event.agent.hostname, at);
      }
      for (const [hostname, ackAt] of acks) {
        const at = seen.get(hostname);
        if (at === undefined) missing++;
        else lags.push(at - ackAt);
      }
    }
    return {
      agents: running.spec.agents,
      spec,
      lists: { calls: lists.length, agentsReturned, bytes: listBytes, latency: summarize(lists) },
      ackDuringReads: stats.latency,
      beatsPerSecond: stats.acked / (stats.windowMs / 1000),
      ...meanwhile(metrics0, metrics1, stats),
      snapshotMs,
      watchLag: summarize(lags),
      eventsExpected: acks.size * watchers.length,
      eventsMissing: missing,
      watchersCutOff: watchers.filter((watcher) => watcher.ended() !== undefined).length,
      serverCpuPercent: cpuPercent(s0, s1),
      errors,
    };
  } finally {
    for (const watcher of watchers) watcher.close();
    registrar.close();
  }
}

function register(client: grpc.Client, hostname: string): Promise<void> {
  const method = SERVICE["Register"] as grpc.MethodDefinition<object, object>;
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      (bytes: Buffer) => bytes,
      create(RegisterRequestSchema, { hostname, ipAddress: "127.0.0.1", port: 11434, ollamaVersion: "0.5.7", labels: { bench: "read-heavy" } }),
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (error) => (error === null ? resolve() : reject(error)),
    );
  });
}
