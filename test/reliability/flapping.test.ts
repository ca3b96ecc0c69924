// A node whose connection drops every few seconds stays ONLINE while its beats arrive within the timeout,
// and each drop costs a watcher at most two events (stream lost, stream back), never a status change.

import { afterEach, expect, it } from "vitest";
import { AgentStatus, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { grpcClient } from "../support/clients.js";
import { EventLog } from "../support/event-log.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

let server: TestServer | undefined;

afterEach(async () => {
  await server?.dispose();
});

it("keeps a flapping node ONLINE with at most two events per drop", async () => {
  server = await startTestServer({ heartbeatIntervalMs: 200, agentTimeoutMs: 1000 });
  const running = server;
  const log = new EventLog(() => running.httpUrl);
  const id = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";
  const flaps = 8;
  for (let flap = 0; flap < flaps; flap++) {
    // Each flap a new connection, as after a network drop.
    const client = grpcClient(running.grpcAddress);
    if (flap === 0) await client.register({ agentId: id, hostname: "gpu-flappy" });
    const beat = client.heartbeat();
    for (let seq = 1n; seq <= 3n; seq++) {
      beat.send({ agentId: id, seq });
      expect((await beat.recv()).status).toBe(AgentStatus.ONLINE);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    beat.cancel(); // the stream drops without a goodbye (no leaving)
    client.close();
    await beat.closed;
    await new Promise((resolve) => setTimeout(resolve, 300)); // down for a while, well within the timeout
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  await log.stop();
  const mine = log.events.filter((event) => event.agent?.id === id);
  expect(mine.filter((event) => event.type === WatchEventType.STATUS_CHANGED)).toEqual([]);
  expect(log.offlineIds().has(id)).toBe(false);
  // The snapshot or ADDED, then per flap: connected, disconnected.
  expect(mine.length).toBeLessThanOrEqual(1 + 2 * flaps);
  const reader = grpcClient(running.grpcAddress);
  expect((await reader.getAgent(id)).agent?.status).toBe(AgentStatus.ONLINE);
  reader.close();
});
