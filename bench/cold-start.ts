// Scenario 5, cold start: from spawning `agent-registry serve` to its start line and to its first
// successful ListAgents, for each store with an N-agent data directory (store-data-dir.ts: agents.json in
// the prototype's format, or the same fleet migrated into registry.db, made before anything is timed), next
// to the same store with an empty data directory and to a bare `node` printing one line (what Node itself
// costs). The cases take turns start by start, so a noisy moment is shared out; median of several starts.
// Then, per store, ListAgents pages of 1 000 on a server with the largest fleet and no load (a floor for
// the reads scenario's pages).

import { join } from "node:path";
import type { StoreKind } from "../src/config/index.js";
import type { BenchContext } from "./context.js";
import { waitForQuiet } from "./interference.js";
import { type LatencySummary, summarize } from "./latency.js";
import { SERVER_CORE } from "./processes.js";
import { RawListClient } from "./registry-probe.js";
import { writeStoreDataDir } from "./store-data-dir.js";
import { startRegistry, waitForLine } from "./targets.js";

export interface ColdStartCase {
  readonly store: StoreKind;
  /** 0: an empty data directory. */
  readonly agents: number;
  /** The store's files before the first start (agents.json, or registry.db). */
  readonly dataBytes: number;
  readonly toStartLineMs: LatencySummary;
  readonly toFirstListMs: LatencySummary;
}

export interface ColdStartReport {
  readonly runs: number;
  readonly nodeBareMs: LatencySummary;
  readonly cases: readonly ColdStartCase[];
  /**
   * ListAgents pages of 1 000 over gRPC on the started server with the largest fleet and nothing beating:
   * the floor of the reads scenario's page, which runs during 10 000 beats a second.
   */
  readonly idlePages?: ReadonlyArray<{ readonly store: StoreKind; readonly agents: number; readonly latency: LatencySummary }>;
}

const IDLE_PAGE_CALLS = 100;

interface Prepared {
  readonly store: StoreKind;
  readonly agents: number;
  readonly dataDir: string;
  readonly dataBytes: number;
  readonly toStartLine: number[];
  readonly toFirstList: number[];
}

export async function coldStart(ctx: BenchContext, stores: readonly StoreKind[], sizes: readonly number[], runs: number): Promise<ColdStartReport> {
  const prepared: Prepared[] = [];
  for (const store of stores) {
    for (const agents of [0, ...sizes]) {
      const dataDir = await ctx.freshDir(`cold-${store}-${agents}`);
      const dataBytes = agents === 0 ? 0 : (await writeStoreDataDir(ctx.processes, dataDir, store, agents, Date.now())).bytes;
      prepared.push({ store, agents, dataDir, dataBytes, toStartLine: [], toFirstList: [] });
    }
  }
  await waitForQuiet(ctx.quick ? 10_000 : 120_000, ctx.log);
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const child = ctx.processes.spawn("node -e", process.execPath, ["-e", "process.stdout.write('up\\n')"], { core: SERVER_CORE });
    await waitForLine(child, /up/, 10_000);
    bare.push(performance.now() - started);
    await child.stop(1000);
  }
  for (let i = 0; i < runs; i++) {
    for (const c of prepared) {
      const { toStartLineMs, toFirstListMs } = await startOnce(ctx, c.store, c.dataDir);
      c.toStartLine.push(toStartLineMs);
      c.toFirstList.push(toFirstListMs);
    }
  }
  const idlePages: Array<NonNullable<ColdStartReport["idlePages"]>[number]> = [];
  for (const store of stores) {
    const largest = prepared.filter((c) => c.store === store).at(-1);
    if (largest === undefined || largest.agents < 1000) continue;
    const target = await startRegistry(ctx.processes, { dataDir: largest.dataDir, store, heartbeatIntervalS: 30, agentTimeoutS: 60 });
    const client = new RawListClient(target.address);
    try {
      // Connection set-up and the first runs of the code (not yet optimised) are not what is measured:
      // the reads scenario's server has been answering for a while.
      let token = "";
      for (let i = 0; i < IDLE_PAGE_CALLS; i++) token = (await client.list(1000, token)).nextPageToken;
      const pages: number[] = [];
      for (let i = 0; i < IDLE_PAGE_CALLS; i++) {
        const t0 = performance.now();
        token = (await client.list(1000, token)).nextPageToken;
        pages.push(performance.now() - t0);
      }
      idlePages.push({ store, agents: largest.agents, latency: summarize(pages) });
    } finally {
      client.close();
      await target.stop();
    }
  }
  if (ctx.profileDir !== undefined) {
    // One more start per store with the largest fleet, profiled and not timed (the profiler slows start-up).
    for (const store of stores) {
      const largest = prepared.filter((c) => c.store === store).at(-1);
      if (largest === undefined) continue;
      const target = await startRegistry(ctx.processes, {
        dataDir: largest.dataDir,
        store,
        heartbeatIntervalS: 30,
        agentTimeoutS: 60,
        cpuProfileDir: join(ctx.profileDir, `cold-start-${store}`),
      });
      await target.stop();
    }
  }
  return {
    runs,
    nodeBareMs: summarize(bare),
    idlePages,
    cases: prepared.map((c) => ({
      store: c.store,
      agents: c.agents,
      dataBytes: c.dataBytes,
      toStartLineMs: summarize(c.toStartLine),
      toFirstListMs: summarize(c.toFirstList),
    })),
  };
}

async function startOnce(ctx: BenchContext, store: StoreKind, dataDir: string): Promise<{ toStartLineMs: number; toFirstListMs: number }> {
  const started = performance.now();
  const target = await startRegistry(ctx.processes, { dataDir, store, heartbeatIntervalS: 30, agentTimeoutS: 60 });
  try {
    const client = new RawListClient(target.address);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await client.list(1, "", 2000);
          break;
        } catch (error) {
          if (attempt > 100) throw error;
        }
      }
      return { toStartLineMs: target.startMs, toFirstListMs: performance.now() - started };
    } finally {
      client.close();
    }
  } finally {
    await target.stop();
  }
}
