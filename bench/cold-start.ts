// Scenario 5, cold start: from spawning `agent-registry serve` to its start line and to its first
// successful ListAgents, with a 10 000-agent agents.json in the prototype's format, next to the same with
// no file and to a bare `node` printing one line (what Node itself costs). Median of several starts.

import { join } from "node:path";
import type { BenchContext } from "./context.js";
import { writeFleetFile } from "./fleet-file.js";
import { waitForQuiet } from "./interference.js";
import { type LatencySummary, summarize } from "./latency.js";
import { SERVER_CORE } from "./processes.js";
import { RawListClient } from "./registry-probe.js";
import { startRegistry, waitForLine } from "./targets.js";

export interface ColdStartCase {
  readonly agents: number;
  readonly toStartLineMs: LatencySummary;
  readonly toFirstListMs: LatencySummary;
}

export interface ColdStartReport {
  readonly runs: number;
  readonly fileBytes: number;
  readonly nodeBareMs: LatencySummary;
  readonly empty: ColdStartCase;
  readonly fleet: ColdStartCase;
}

export async function coldStart(ctx: BenchContext, agents: number, runs: number): Promise<ColdStartReport> {
  const emptyDir = await ctx.freshDir("cold-empty");
  const fleetDir = await ctx.freshDir("cold-fleet");
  const fileBytes = (await writeFleetFile(join(fleetDir, "agents.json"), agents, Date.now())).bytes;
  await waitForQuiet(ctx.quick ? 10_000 : 120_000, ctx.log);
  const bare: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const child = ctx.processes.spawn("node -e", process.execPath, ["-e", "process.stdout.write('up\\n')"], { core: SERVER_CORE });
    await waitForLine(child, /up/, 10_000);
    bare.push(performance.now() - started);
    await child.stop(1000);
  }
  const report = {
    runs,
    fileBytes,
    nodeBareMs: summarize(bare),
    empty: await startMany(ctx, emptyDir, 0, runs),
    fleet: await startMany(ctx, fleetDir, agents, runs),
  };
  if (ctx.profileDir !== undefined) {
    // One more start, profiled and not timed (the profiler slows start-up down).
    const target = await startRegistry(ctx.processes, { dataDir: fleetDir, heartbeatIntervalS: 30, agentTimeoutS: 60, cpuProfileDir: join(ctx.profileDir, "cold-start") });
    await target.stop();
  }
  return report;
}

async function startMany(ctx: BenchContext, dataDir: string, agents: number, runs: number): Promise<ColdStartCase> {
  const toStartLine: number[] = [];
  const toFirstList: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const target = await startRegistry(ctx.processes, { dataDir, heartbeatIntervalS: 30, agentTimeoutS: 60 });
    try {
      toStartLine.push(target.startMs);
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
        toFirstList.push(performance.now() - started);
      } finally {
        client.close();
      }
    } finally {
      await target.stop();
    }
  }
  return { agents, toStartLineMs: summarize(toStartLine), toFirstListMs: summarize(toFirstList) };
}
