// Scenario 4, reads under load: with the fleet still beating, pages of 1 000 agents over gRPC (walking
// the page tokens through the whole registry, again and again) and the full list (page_size 0) over
// Connect JSON on the HTTP port; one call at a time with a short pause, as a scheduler polling would.
// The beats' ack round trips during the reads are measured too: a slow read stalls the event loop.

import { disturbances } from "./interference.js";
import { type LatencySummary, summarize } from "./latency.js";
import { type Meanwhile, type RunningLoad, meanwhile, sleep } from "./load-run.js";
import { cpuPercent, sampleProcess } from "./proc-stats.js";
import { RawListClient, listConnectJson, scrape } from "./registry-probe.js";

/** With the server's and the load generator's event loops, and the server's GC, while the reads ran. */
export interface ReadsResult extends Meanwhile {
  readonly agents: number;
  readonly grpcPage: { readonly pageSize: number; readonly calls: number; readonly bytesPerPage: number; readonly latency: LatencySummary };
  readonly connectFull: { readonly calls: number; readonly agentsReturned: number; readonly bytes: number; readonly latency: LatencySummary };
  /** Ack round trips of the beats while the reads ran. */
  readonly ackDuringReads: LatencySummary;
  readonly beatsPerSecondDuringReads: number;
  readonly serverCpuPercent: number;
  readonly errors: number;
  /** Rounds of reads run to get one without a stall of the load generator (the least stalled is the one shown). */
  readonly rounds?: number;
}

/**
 * As a steady window is: a round of reads during which the load generator stalled (GENERATOR_STALL_MS) is
 * run again, up to `rounds` times, and the round whose generator stalled least is kept.
 */
export async function readsUnderLoad(running: RunningLoad, pageCalls: number, fullCalls: number, rounds: number, log: (line: string) => void): Promise<ReadsResult> {
  let best: ReadsResult | undefined;
  let round = 1;
  for (; ; round++) {
    const result = await readsRound(running, pageCalls, fullCalls);
    if (best === undefined || result.generatorLoopDelayMs.max < best.generatorLoopDelayMs.max) best = result;
    const [reason] = disturbances(0, result.generatorLoopDelayMs.max);
    if (reason === undefined || round === rounds) break;
    log(`  ${reason}; reading again`);
  }
  return { ...(best as ReadsResult), rounds: round };
}

async function readsRound(running: RunningLoad, pageCalls: number, fullCalls: number): Promise<ReadsResult> {
  const { target, generator } = running;
  if (target.httpUrl === undefined) throw new Error("reads need the registry's HTTP listener");
  const client = new RawListClient(target.address);
  const pages: number[] = [];
  const full: number[] = [];
  let bytesPerPage = 0;
  let fullBytes = 0;
  let agentsReturned = 0;
  let errors = 0;
  try {
    // One untimed call of each kind first: connection set-up is not what is measured.
    await client.list(1000, "");
    const first = await listConnectJson(target.httpUrl, { pageSize: 0 }, true);
    agentsReturned = (JSON.parse(first.body ?? "{}") as { agents?: unknown[] }).agents?.length ?? 0;
    const metrics0 = await scrape(target.httpUrl);
    await generator.mark();
    const s0 = await sampleProcess(target.child.pid);
    let token = "";
    for (let i = 0; i < pageCalls; i++) {
      const t0 = performance.now();
      try {
        const page = await client.list(1000, token);
        pages.push(performance.now() - t0);
        bytesPerPage = Math.max(bytesPerPage, page.bytes);
        token = page.nextPageToken;
      } catch {
        errors++;
        token = "";
      }
      await sleep(20);
    }
    for (let i = 0; i < fullCalls; i++) {
      const t0 = performance.now();
      try {
        fullBytes = (await listConnectJson(target.httpUrl, { pageSize: 0 }, false)).bytes;
        full.push(performance.now() - t0);
      } catch {
        errors++;
      }
      await sleep(100);
    }
    const s1 = await sampleProcess(target.child.pid);
    const stats = await generator.collect();
    const metrics1 = await scrape(target.httpUrl);
    return {
      agents: running.spec.agents,
      grpcPage: { pageSize: 1000, calls: pages.length, bytesPerPage, latency: summarize(pages) },
      connectFull: { calls: full.length, agentsReturned, bytes: fullBytes, latency: summarize(full) },
      ackDuringReads: stats.latency,
      beatsPerSecondDuringReads: stats.acked / (stats.windowMs / 1000),
      ...meanwhile(metrics0, metrics1, stats),
      serverCpuPercent: cpuPercent(s0, s1),
      errors,
    };
  } finally {
    client.close();
  }
}
