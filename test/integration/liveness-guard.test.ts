// The offline guard and the rate-scaled interval on a real server, short intervals (0.2 s beats, 0.6 s
// timeout): nodes beat over grpc-js Heartbeat streams, and what they look like is read over both listeners,
// from /readyz and from /metrics, as an operator and a load balancer would.

import { afterEach, describe, expect, it } from "vitest";
import { AgentStatus, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { durationMs } from "../../src/agent/registry-connection.js";
import type { ServerConfig } from "../../src/config/index.js";
import { type BeatStream, type RegistryClient, connectClient, grpcClient } from "../support/clients.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const INTERVAL_MS = 200;
const TIMEOUT_MS = 600;
const FLEET = 20;

const id = (n: number): string => `3f2b8c1e-6d4a-4f7e-9b1c-${String(n).padStart(12, "0")}`;

let server: TestServer | undefined;
const clients: RegistryClient[] = [];
const timers: NodeJS.Timeout[] = [];

afterEach(async () => {
  for (const timer of timers.splice(0)) clearInterval(timer);
  for (const client of clients.splice(0)) client.close();
  await server?.dispose();
  server = undefined;
});

function guard(overrides: Partial<ServerConfig["liveness"]["offlineGuard"]> = {}): ServerConfig["liveness"] {
  return { offlineGuard: { share: 0.5, minFleet: 10, maxHoldMs: 300_000, ...overrides }, maxBeatsPerSecond: 0 };
}

/** A fleet of nodes, each on its own grpc-js connection with its stream open, beating every interval while `beating`. */
async function startFleet(
  target: TestServer,
  size = FLEET,
): Promise<{ silence(ids: readonly string[]): void; resume(ids: readonly string[]): void; ids: string[]; told: number[] }> {
  const ids = Array.from({ length: size }, (_, n) => id(n + 1));
  const beating = new Set(ids);
  const streams = new Map<string, BeatStream>();
  let seq = 1n;
  /** The interval each Register answered. */
  const told: number[] = [];
  for (const agentId of ids) {
    const client = grpcClient(target.grpcAddress);
    clients.push(client);
    const response = await client.register({ agentId, hostname: `gpu-${agentId.slice(-2)}` });
    told.push(durationMs(response.heartbeatInterval) ?? 0);
    expect(durationMs(response.agentTimeout)).toBe((told.at(-1) ?? 0) * 3);
    const stream = client.heartbeat();
    stream.send({ agentId, seq: seq++ });
    await stream.recv();
    // Acks are read and dropped: the streams stay healthy.
    void (async () => {
      for (;;) await stream.recv();
    })().catch(() => undefined);
    streams.set(agentId, stream);
  }
  timers.push(
    setInterval(() => {
      for (const agentId of beating) streams.get(agentId)?.send({ seq: seq++ });
    }, INTERVAL_MS),
  );
  return {
    ids,
    told,
    silence: (silent) => silent.forEach((agentId) => beating.delete(agentId)),
    resume(back) {
      for (const agentId of back) {
        beating.add(agentId);
        streams.get(agentId)?.send({ seq: seq++ });
      }
    },
  };
}

async function readyz(target: TestServer): Promise<{ status: number; body: string }> {
  const response = await fetch(`${target.httpUrl}/readyz`);
  return { status: response.status, body: await response.text() };
}

async function metric(target: TestServer, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${target.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((row) => row.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

async function statuses(client: RegistryClient, ids: readonly string[]): Promise<{ online: number; offline: number; held: number }> {
  const { agents } = await client.listAgents();
  const mine = agents.filter((agent) => ids.includes(agent.id));
  return {
    online: mine.filter((agent) => agent.status === AgentStatus.ONLINE).length,
    offline: mine.filter((agent) => agent.status === AgentStatus.OFFLINE).length,
    held: mine.filter((agent) => agent.livenessHeld).length,
  };
}

describe("the offline guard on a real server", () => {
  it("holds 12 of 20 silent nodes ONLINE and held, says so on /readyz and /metrics, and expires them when the hold runs out", async () => {
    server = await startTestServer({ heartbeatIntervalMs: INTERVAL_MS, agentTimeoutMs: TIMEOUT_MS, liveness: guard({ maxHoldMs: 2500 }) });
    const connect = connectClient(server.httpUrl);
    const grpc = grpcClient(server.grpcAddress);
    clients.push(connect, grpc);
    const fleet = await startFleet(server);
    const silent = fleet.ids.slice(0, 12);
    const watch = connect.watch();
    const offlineAt = new Map<string, number>();
    void (async () => {
      for (;;) {
        const event = await watch.recv();
        if (event.type === WatchEventType.STATUS_CHANGED && event.agent?.status === AgentStatus.OFFLINE) offlineAt.set(event.agent.id, performance.now());
      }
    })().catch(() => undefined);

    fleet.silence(silent);
    const silencedAt = performance.now();
    await expect.poll(() => statuses(connect, silent), { timeout: 3000, interval: 50 }).toEqual({ online: 12, offline: 0, held: 12 });
    expect(await statuses(grpc, fleet.ids.slice(12))).toEqual({ online: 8, offline: 0, held: 0 });
    const ready = await readyz(server);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatch(/^ok\noffline guard active since \S+: 12 of 20 nodes stopped beating at once; 12 held ONLINE/);
    expect(await metric(server, "agent_registry_offline_guard_active")).toBe(1);
    expect(await metric(server, "agent_registry_liveness_held_agents")).toBe(12);

    // None of them turns OFFLINE while the hold lasts (2.5 s from when it began, ~0.6 s after they fell silent).
    await expect.poll(() => offlineAt.size, { timeout: 5000, interval: 50 }).toBe(12);
    const firstOffline = Math.min(...offlineAt.values());
    expect(firstOffline - silencedAt).toBeGreaterThan(2500);
    expect(await statuses(grpc, silent)).toEqual({ online: 0, offline: 12, held: 0 });
    expect(await statuses(grpc, fleet.ids.slice(12))).toEqual({ online: 8, offline: 0, held: 0 });
    expect((await readyz(server)).body).toBe("ok\n");
    expect(await metric(server, "agent_registry_offline_guard_active")).toBe(0);
  }, 20_000);

  it("ends the hold once 10 of the 12 beat again, and the other 2 turn OFFLINE then", async () => {
    server = await startTestServer({ heartbeatIntervalMs: INTERVAL_MS, agentTimeoutMs: TIMEOUT_MS, liveness: guard() });
    const connect = connectClient(server.httpUrl);
    clients.push(connect);
    const fleet = await startFleet(server);
    const silent = fleet.ids.slice(0, 12);
    fleet.silence(silent);
    await expect.poll(() => statuses(connect, silent), { timeout: 3000, interval: 50 }).toEqual({ online: 12, offline: 0, held: 12 });

    fleet.resume(silent.slice(0, 10));
    const resumedAt = performance.now();
    await expect.poll(() => statuses(connect, silent.slice(10)), { timeout: 2000, interval: 20 }).toEqual({ online: 0, offline: 2, held: 0 });
    expect(performance.now() - resumedAt).toBeLessThan(1000);
    expect(await statuses(connect, silent.slice(0, 10))).toEqual({ online: 10, offline: 0, held: 0 });
  }, 20_000);

  it("with the guard off (share 0), turns 12 silent nodes OFFLINE within 1 s of their timeout", async () => {
    server = await startTestServer({ heartbeatIntervalMs: INTERVAL_MS, agentTimeoutMs: TIMEOUT_MS, liveness: guard({ share: 0 }) });
    const connect = connectClient(server.httpUrl);
    clients.push(connect);
    const fleet = await startFleet(server);
    const silent = fleet.ids.slice(0, 12);
    fleet.silence(silent);
    const silencedAt = performance.now();
    await expect.poll(() => statuses(connect, silent), { timeout: 3000, interval: 25 }).toEqual({ online: 0, offline: 12, held: 0 });
    // The last beat was up to one interval before the silence began.
    expect(performance.now() - silencedAt).toBeLessThan(TIMEOUT_MS + 1000);
  }, 20_000);
});

describe("the rate-scaled interval on a real server", () => {
  it("tells a growing fleet a growing interval, and judges a node by the interval it was told", async () => {
    // 20 beats a second at most: a fleet of n past 4 is told n / 20 s, and judged by 3 times that.
    server = await startTestServer({
      heartbeatIntervalMs: INTERVAL_MS,
      agentTimeoutMs: TIMEOUT_MS,
      liveness: { ...guard({ share: 0 }), maxBeatsPerSecond: 20 },
    });
    const fleet = await startFleet(server);
    expect(fleet.told).toEqual([200, 200, 200, 200, 250, 300, 350, 400, 450, 500, 550, 600, 650, 700, 750, 800, 850, 900, 950, 1000]);

    // A 21st node is told 1.05 s: beating at that pace keeps it ONLINE, far past the configured 0.6 s timeout.
    const grpc = grpcClient(server.grpcAddress);
    const connect = connectClient(server.httpUrl);
    clients.push(grpc, connect);
    const node = id(FLEET + 1);
    const registered = await grpc.register({ agentId: node, hostname: "gpu-late" });
    expect(durationMs(registered.heartbeatInterval)).toBe(1050);
    const stream = grpc.heartbeat();
    stream.send({ agentId: node, seq: 1n });
    expect(durationMs((await stream.recv()).heartbeatInterval)).toBe(1050);
    let lastAck = performance.now();
    for (let seq = 2n; seq <= 3n; seq++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await connect.getAgent(node)).agent?.status).toBe(AgentStatus.ONLINE);
      stream.send({ seq });
      expect(durationMs((await stream.recv()).heartbeatInterval)).toBe(1050);
      lastAck = performance.now();
    }
    expect(await metric(server, "agent_registry_heartbeat_interval_seconds")).toBe(1.05);

    // Silent now: OFFLINE once its stretched timeout (3.15 s) has passed, not at the configured one.
    await expect
      .poll(async () => (await connect.getAgent(node)).agent?.status, { timeout: 6000, interval: 25 })
      .toBe(AgentStatus.OFFLINE);
    const silentFor = performance.now() - lastAck;
    expect(silentFor).toBeGreaterThan(3150);
    expect(silentFor).toBeLessThan(3150 + 1000);
    stream.end();
  }, 20_000);
});
