// A node's inventory through a real server over both listeners: Register and beats carry it, ListAgents,
// GetAgent and WatchAgents show it, the model / loaded_model / ready filters select by it; and the opt-in
// reachability probe against fake Ollama servers on loopback (and, off, never a connection to a node).

import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type MessageInitShape } from "@bufbuild/protobuf";
import { AgentStatus, type InventorySchema, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, connectClient, grpcClient } from "../support/clients.js";
import { type FakeOllama, startFakeOllama } from "../support/fake-ollama.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const transports = [
  { name: "gRPC (grpc-js) on the gRPC port", connect: (server: TestServer) => grpcClient(server.grpcAddress) },
  { name: "Connect on the HTTP port", connect: (server: TestServer) => connectClient(server.httpUrl) },
];

const A = "11111111-1111-4111-8111-111111111111";
const B = "22222222-2222-4222-8222-222222222222";
const C = "33333333-3333-4333-8333-333333333333";

const MIB = 2n ** 20n;

function inventory(models: Array<[string, boolean]>): MessageInitShape<typeof InventorySchema> {
  return {
    gpus: [
      { index: 0, uuid: "GPU-5f0e8e5a", name: "NVIDIA A100-SXM4-80GB", memoryTotalBytes: 81920n * MIB, memoryUsedBytes: 31744n * MIB, utilizationPercent: 42, temperatureCelsius: 55 },
      { index: 1, uuid: "GPU-7a1d2c3b", name: "NVIDIA GH200 480GB" },
    ],
    models: models.map(([name, loaded]) => ({ name, digest: "sha256:46e0c10c039e", sizeBytes: 4_920_753_328n, loaded, vramBytes: loaded ? 6_012_954_624n : 0n })),
  };
}

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serverAndClient(connect: (server: TestServer) => RegistryClient, overrides = {}): Promise<{ server: TestServer; client: RegistryClient }> {
  const server = await startTestServer(overrides);
  cleanups.push(() => server.dispose());
  const client = connect(server);
  cleanups.push(() => client.close());
  return { server, client };
}

describe.each(transports)("the inventory over $name", ({ connect }) => {
  it("shows what Register carried in GetAgent and ListAgents, [N/A] figures absent", async () => {
    const { client } = await serverAndClient(connect);
    await client.register({ agentId: A, hostname: "gpu-a", ipAddress: "10.0.0.1", inventory: inventory([["llama3.1:8b", true]]) });

    const { agent } = await client.getAgent(A);
    const [listed] = (await client.listAgents()).agents;

    expect(agent?.gpus.map((gpu) => [gpu.name, gpu.memoryTotalBytes, gpu.utilizationPercent])).toEqual([
      ["NVIDIA A100-SXM4-80GB", 81920n * MIB, 42],
      ["NVIDIA GH200 480GB", undefined, undefined],
    ]);
    expect(agent?.models.map((model) => [model.name, model.loaded, model.vramBytes])).toEqual([["llama3.1:8b", true, 6_012_954_624n]]);
    expect(agent?.inventoryUpdatedAt).toBeDefined();
    expect(agent?.reachable).toBe(true);
    expect(listed?.models).toEqual(agent?.models);
  });

  it("selects by model, loaded_model and ready, alone and together", async () => {
    const { client } = await serverAndClient(connect);
    await client.register({ agentId: A, hostname: "gpu-a", ipAddress: "10.0.0.1", inventory: inventory([["llama3.1:8b", true]]) });
    await client.register({ agentId: B, hostname: "gpu-b", ipAddress: "10.0.0.2", inventory: inventory([["llama3.1:8b", false], ["qwen2.5:72b", true]]) });
    await client.register({ agentId: C, hostname: "gpu-c", ipAddress: "10.0.0.3", inventory: inventory([["llama3.1:8b", true]]) });
    const beats = client.heartbeat();
    beats.send({ agentId: C, seq: 1n, draining: true });
    await beats.recv();
    const hostnames = async (request: object): Promise<string[]> => (await client.listAgents(request)).agents.map((agent) => agent.hostname);

    expect(await hostnames({ model: "llama3.1:8b" })).toEqual(["gpu-a", "gpu-b", "gpu-c"]);
    expect(await hostnames({ loadedModel: "llama3.1:8b" })).toEqual(["gpu-a", "gpu-c"]);
    expect(await hostnames({ loadedModel: "llama3.1:8b", ready: true })).toEqual(["gpu-a"]);
    expect(await hostnames({ ready: true, status: AgentStatus.ONLINE, model: "qwen2.5:72b" })).toEqual(["gpu-b"]);
    beats.cancel();
  });

  it("tells a loaded_model watcher of a node that loads the model, and nothing of utilisation alone", async () => {
    const { client } = await serverAndClient(connect);
    await client.register({ agentId: A, hostname: "gpu-a", ipAddress: "10.0.0.1", inventory: inventory([["llama3.1:8b", false]]) });
    const beats = client.heartbeat();
    beats.send({ agentId: A, seq: 1n });
    await beats.recv();
    const all = client.watch({});
    const loaded = client.watch({ loadedModel: "llama3.1:8b" });
    expect((await all.recv()).snapshot).toBe(true);

    const busier = inventory([["llama3.1:8b", false]]);
    (busier.gpus?.[0] as { utilizationPercent?: number }).utilizationPercent = 97;
    beats.send({ seq: 2n, inventory: busier });
    await beats.recv();
    beats.send({ seq: 3n, inventory: inventory([["llama3.1:8b", true]]) });
    await beats.recv();

    const next = await all.recv();
    expect([WatchEventType[next.type], next.agent?.models[0]?.loaded]).toEqual(["UPDATED", true]);
    const entered = await loaded.recv();
    expect([WatchEventType[entered.type], entered.agent?.hostname, entered.snapshot]).toEqual(["ADDED", "gpu-a", false]);
    all.cancel();
    loaded.cancel();
    beats.cancel();
  });
});

describe("the reachability probe", () => {
  async function ollama(): Promise<FakeOllama> {
    const server = await startFakeOllama();
    cleanups.push(() => server.close().catch(() => undefined)); // a test may have closed it already
    return server;
  }

  it("marks a node whose Ollama stops answering unreachable after three failures, and back after one success", async () => {
    const node = await ollama();
    const server = await startTestServer({ probeIntervalMs: 100 });
    cleanups.push(() => server.dispose());
    const reader = connectClient(server.httpUrl);
    cleanups.push(() => reader.close());
    await reader.register({ agentId: A, hostname: "gpu-a", ipAddress: "127.0.0.1", port: node.port });
    await until(async () => node.probes >= 1);
    expect((await reader.getAgent(A)).agent?.reachable).toBe(true);

    await node.close();
    await until(async () => (await reader.getAgent(A)).agent?.reachable === false);
    const { agent } = await reader.getAgent(A);
    expect(agent?.statusMessage).toMatch(new RegExp(`^GET http://127\\.0\\.0\\.1:${node.port}/api/version failed 3 times in a row: ECONNREFUSED`));
    expect((await reader.listAgents({ ready: true })).agents).toEqual([]);

    const back = await startFakeOllama({ port: node.port });
    cleanups.push(() => back.close());
    await until(async () => (await reader.getAgent(A)).agent?.reachable === true);
    expect((await reader.getAgent(A)).agent?.statusMessage).toBe("");
    expect((await reader.listAgents({ ready: true })).agents.map((a) => a.hostname)).toEqual(["gpu-a"]);
  });

  it("never connects to a registered address while it is off (the default)", async () => {
    let connections = 0;
    const socket = createServer((connection) => {
      connections++;
      connection.destroy();
    });
    await new Promise<void>((resolve) => socket.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const port = (socket.address() as AddressInfo).port;
    const server = await startTestServer({ heartbeatIntervalMs: 50, agentTimeoutMs: 120 });
    cleanups.push(() => server.dispose());
    const client = grpcClient(server.grpcAddress);
    cleanups.push(() => client.close());

    await client.register({ agentId: A, hostname: "gpu-a", ipAddress: "127.0.0.1", port });
    // Long enough for a prober at any interval the tests use to have tried several times, and for the
    // node to go offline by timeout and be listed again.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await client.listAgents({ ready: true });

    expect(connections).toBe(0);
  });
});

async function until(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
