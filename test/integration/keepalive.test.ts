// Keepalive pings on both listeners: when a node's connection goes half-open (the peer vanished without
// a FIN), the server notices within a few pings, closes the connection, and stream_connected turns false,
// while the node keeps its deadline (a lost connection is not a leave).

import { afterEach, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { type BlackholeProxy, startBlackholeProxy } from "../support/blackhole-proxy.js";
import { type RegistryClient, connectClient, grpcClient } from "../support/clients.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const NODE = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";

const listeners = [
  { name: "the gRPC port", target: (server: TestServer) => server.grpcAddress, connect: (address: string) => grpcClient(address) },
  { name: "the HTTP port (h2c)", target: (server: TestServer) => new URL(server.httpUrl).host, connect: (address: string) => connectClient(`http://${address}`) },
];

let server: TestServer | undefined;
let proxy: BlackholeProxy | undefined;
const clients: RegistryClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await proxy?.close();
  await server?.dispose();
});

describe.each(listeners)("keepalive on $name", ({ target, connect }) => {
  it("closes a half-open connection, so the node shows stream_connected false but stays ONLINE", async () => {
    // Interval 0.2 s: the server pings every second (its floor); the timeout leaves the node ONLINE throughout.
    server = await startTestServer({ heartbeatIntervalMs: 200, agentTimeoutMs: 30_000 });
    const [host, port] = target(server).split(":") as [string, string];
    proxy = await startBlackholeProxy({ host, port: Number(port) });
    const direct = grpcClient(server.grpcAddress);
    const node = connect(proxy.address);
    clients.push(direct, node);
    await direct.register({ agentId: NODE, hostname: "gpu-1" });
    const beat = node.heartbeat();
    beat.send({ agentId: NODE, seq: 1n });
    await beat.recv();
    expect((await direct.getAgent(NODE)).agent?.streamConnected).toBe(true);

    proxy.blackhole();
    await expect
      .poll(async () => (await direct.getAgent(NODE)).agent?.streamConnected, { timeout: 8000, interval: 100 })
      .toBe(false);
    expect((await direct.getAgent(NODE)).agent?.status).toBe(AgentStatus.ONLINE);
    beat.cancel();
  }, 15_000);
});
