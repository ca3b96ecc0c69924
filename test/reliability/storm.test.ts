// Reconnect storm: a whole fleet loses its streams at the same moment (the server restarts). Reconnects
// must spread out (full jitter), and the server must stay responsive meanwhile (ListAgents latency).
// STORM_FLEET sets the fleet (1 000 here, 5 000 in `npm run test:chaos`).

import { rm } from "node:fs/promises";
import { afterEach, expect, it } from "vitest";
import { connectClient } from "../support/clients.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { SimFleet } from "../support/sim-fleet.js";
import { makeDataDir } from "../support/test-server.js";

const FLEET = Number(process.env["STORM_FLEET"] ?? 1000);
const ENV = { HEARTBEAT_INTERVAL: "1", AGENT_TIMEOUT: "5" };

let dataDir: string | undefined;
let server: ServerProcess | undefined;
let fleet: SimFleet | undefined;

afterEach(async () => {
  fleet?.stop();
  server?.child.kill("SIGKILL");
  await server?.exited;
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

it(`spreads the reconnects of ${FLEET} agents and keeps answering ListAgents during the storm`, async () => {
  dataDir = await makeDataDir();
  server = await startServerProcess(dataDir, ENV);
  const [grpcPort, httpPort] = [server.grpcAddress.split(":")[1] as string, new URL(server.httpUrl).port];
  fleet = new SimFleet({ address: server.grpcAddress, size: FLEET, connections: 16, backoffCapMs: 2000, backoffBaseMs: 250 });
  fleet.start();
  await expect.poll(() => fleet!.stats.beatsAcked, { timeout: 60_000, interval: 200 }).toBeGreaterThan(FLEET * 2);

  server.child.kill("SIGKILL");
  await server.exited;
  server = await startServerProcess(dataDir, {
    ...ENV,
    REGISTRY_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
    REGISTRY_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
  });
  const back = Date.now();
  const reader = connectClient(server.httpUrl);
  const latencies: number[] = [];
  while (fleet.stats.reconnects < FLEET && Date.now() - back < 20_000) {
    const started = performance.now();
    const { agents } = await reader.listAgents({ pageSize: 100 });
    latencies.push(performance.now() - started);
    expect(agents).toHaveLength(Math.min(100, FLEET));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  reader.close();
  expect(fleet.stats.reconnects).toBeGreaterThanOrEqual(FLEET);

  const times = fleet.stats.reconnectTimes.map((at) => at - back).sort((a, b) => a - b);
  const buckets = new Map<number, number>();
  for (const at of times) buckets.set(Math.floor(at / 250), (buckets.get(Math.floor(at / 250)) ?? 0) + 1);
  const busiest = Math.max(...buckets.values());
  latencies.sort((a, b) => a - b);
  console.log(
    `storm: ${FLEET} agents back over ${Math.round(percentile(times, 100))} ms (p50 ${Math.round(percentile(times, 50))} ms), ` +
      `busiest 250 ms: ${busiest} reconnects; ListAgents p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
      `p99 ${percentile(latencies, 99).toFixed(1)} ms over ${latencies.length} calls`,
  );
  // Full jitter: no quarter second carries more than half the fleet.
  expect(busiest).toBeLessThan(FLEET / 2);
  expect(percentile(latencies, 99)).toBeLessThan(1000);
}, 120_000);
