// An event-loop stall of the server (the process stopped with SIGSTOP for 2 s, as a long GC pause or a
// frozen VM would) must not turn agents OFFLINE whose beats arrived in time; silent agents still go.

import { rm } from "node:fs/promises";
import { afterEach, expect, it } from "vitest";
import { EventLog } from "../support/event-log.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { SimFleet } from "../support/sim-fleet.js";
import { makeDataDir } from "../support/test-server.js";

let dataDir: string | undefined;
let server: ServerProcess | undefined;
let fleet: SimFleet | undefined;
let log: EventLog | undefined;

afterEach(async () => {
  await log?.stop();
  fleet?.stop();
  server?.child.kill("SIGCONT");
  server?.child.kill("SIGKILL");
  await server?.exited;
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

it("keeps beating agents ONLINE through a 2 s stall longer than the timeout, and still expires silent ones", async () => {
  dataDir = await makeDataDir();
  server = await startServerProcess(dataDir, { HEARTBEAT_INTERVAL: "0.25", AGENT_TIMEOUT: "1" });
  const running = server;
  log = new EventLog(() => running.httpUrl);
  fleet = new SimFleet({ address: running.grpcAddress, size: 200, connections: 4 });
  fleet.start();
  await expect.poll(() => fleet?.stats.beatsAcked ?? 0, { timeout: 10_000 }).toBeGreaterThan(600);
  const silent = fleet.agents.slice(0, 10);
  for (const agent of silent) agent.silent = true;

  running.child.kill("SIGSTOP");
  await new Promise((resolve) => setTimeout(resolve, 2000));
  running.child.kill("SIGCONT");

  const silentIds = new Set(silent.map((agent) => agent.id));
  await expect.poll(() => [...log!.offlineIds()].filter((id) => silentIds.has(id)).length, { timeout: 5000 }).toBe(10);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await log.stop();
  expect([...log.offlineIds()].filter((id) => !silentIds.has(id))).toEqual([]);
}, 30_000);
