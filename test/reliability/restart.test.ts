// A restart never reports a live node OFFLINE: a simulated fleet beats through a server restart (graceful
// and kill -9) while a watcher records every event.

import { rm } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { connectClient } from "../support/clients.js";
import { EventLog } from "../support/event-log.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { SimFleet } from "../support/sim-fleet.js";
import { makeDataDir } from "../support/test-server.js";

const FLEET = Number(process.env["RESTART_FLEET"] ?? 1000);
// The grace after a restart is one AGENT_TIMEOUT; agents come back within their backoff cap (1 s here)
// plus set-up. 6 s leaves room for a loaded machine (real fleets: 60 s timeout, 30 s backoff cap).
const ENV = { HEARTBEAT_INTERVAL: "0.5", AGENT_TIMEOUT: "6" };

let dataDir: string;
let server: ServerProcess | undefined;
let fleet: SimFleet | undefined;
let log: EventLog | undefined;

beforeEach(async () => {
  dataDir = await makeDataDir();
});

afterEach(async () => {
  await log?.stop();
  fleet?.stop();
  server?.child.kill("SIGKILL");
  await server?.exited;
  await rm(dataDir, { recursive: true, force: true });
});

async function listAll(httpUrl: string): Promise<{ online: number; offline: number; connected: number }> {
  const client = connectClient(httpUrl);
  try {
    const { agents } = await client.listAgents();
    return {
      online: agents.filter((agent) => agent.status === AgentStatus.ONLINE).length,
      offline: agents.filter((agent) => agent.status === AgentStatus.OFFLINE).length,
      connected: agents.filter((agent) => agent.streamConnected).length,
    };
  } finally {
    client.close();
  }
}

describe(`a server restart under a fleet of ${FLEET} beating agents`, () => {
  it.each(["SIGTERM", "SIGKILL"] as const)(
    "reports no agent OFFLINE during or after a %s restart, and every stream is back within an interval and the backoff",
    async (signal) => {
      server = await startServerProcess(dataDir, ENV);
      const first = server;
      const grpcPort = first.grpcAddress.split(":")[1] as string;
      const httpPort = new URL(first.httpUrl).port;
      let current = first.httpUrl;
      log = new EventLog(() => current);
      fleet = new SimFleet({ address: first.grpcAddress, size: FLEET, connections: 8, backoffCapMs: 1000 });
      fleet.start();
      await expect.poll(async () => (await listAll(current)).connected, { timeout: 30_000, interval: 200 }).toBe(FLEET);

      first.child.kill(signal);
      await first.exited;
      const restartedAt = Date.now();
      server = await startServerProcess(dataDir, {
        ...ENV,
        REGISTRY_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
        REGISTRY_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
      });
      current = server.httpUrl;
      const right = await listAll(current);
      expect(right).toMatchObject({ online: FLEET, offline: 0 });
      await expect.poll(async () => (await listAll(current)).connected, { timeout: 10_000, interval: 100 }).toBe(FLEET);
      const back = Date.now() - restartedAt;
      // Wait past the grace period: anything wrongly expiring would have shown by now.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 6500 - (Date.now() - restartedAt))));
      expect(await listAll(current)).toMatchObject({ online: FLEET, offline: 0, connected: FLEET });
      await log.stop();
      expect([...log.offlineIds()]).toEqual([]);
      expect(log.events.length).toBeGreaterThanOrEqual(FLEET);
      // Backoff cap 1 s, plus connection set-up: all streams back within the 6 s grace.
      expect(back).toBeLessThan(6000);
      const spread = fleet.stats.reconnectTimes;
      expect(spread.length).toBeGreaterThanOrEqual(FLEET);
      // Full jitter: reconnects spread over the backoff window rather than landing at one instant.
      expect(Math.max(...spread) - Math.min(...spread)).toBeGreaterThan(300);
    },
    60_000,
  );
});
