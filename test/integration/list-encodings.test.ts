// ListAgents answered from the cache of encoded agents (gRPC, Connect binary, Connect JSON POST) and
// through connect-node's own writer (a gzip-compressed JSON request) give the same agents, before and after
// the agents change: a beat (last_heartbeat), a re-Register (labels, inventory), a deregistration.

import { gzipSync } from "node:zlib";
import { type MessageInitShape, create, fromBinary, fromJson, toBinary, toJson, toJsonString } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type ListAgentsResponse,
  ListAgentsRequestSchema,
  ListAgentsResponseSchema,
  type RegisterRequestSchema,
} from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, grpcClient } from "../support/clients.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const A = "11111111-1111-4111-8111-111111111111";
const B = "22222222-2222-4222-8222-222222222222";
const C = "33333333-3333-4333-8333-333333333333";
const PATH = "/registry.v1.AgentRegistry/ListAgents";

function node(id: string, hostname: string, labels: Record<string, string>, model: string): MessageInitShape<typeof RegisterRequestSchema> {
  return {
    agentId: id,
    hostname,
    ipAddress: "10.0.0.7",
    port: 11434,
    ollamaVersion: "0.5.7",
    labels,
    inventory: {
      gpus: [{ index: 0, uuid: "GPU-5f0e8e5a", name: "NVIDIA A100-SXM4-80GB", memoryTotalBytes: 85_899_345_920n, utilizationPercent: 42 }],
      models: [{ name: model, digest: "sha256:46e0c10c039e", sizeBytes: 4_920_753_328n, loaded: true, vramBytes: 6_012_954_624n }],
    },
  };
}

let server: TestServer;
let grpc: RegistryClient;

beforeEach(async () => {
  server = await startTestServer();
  grpc = grpcClient(server.grpcAddress);
});

afterEach(async () => {
  grpc.close();
  await server.dispose();
});

async function post(body: Uint8Array | string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${server.httpUrl}${PATH}`, { method: "POST", headers, body });
}

/** The same request over every path the server has, each answer as protobuf JSON for comparison. */
async function everyEncoding(request: MessageInitShape<typeof ListAgentsRequestSchema> = {}): Promise<Record<string, unknown>> {
  const message = create(ListAgentsRequestSchema, request);
  const json = toJsonString(ListAgentsRequestSchema, message);
  const answers: Record<string, ListAgentsResponse> = {};
  answers.grpc = await grpc.listAgents(request);
  const binary = await post(toBinary(ListAgentsRequestSchema, message), { "content-type": "application/proto" });
  expect(binary.status).toBe(200);
  answers.connectBinary = fromBinary(ListAgentsResponseSchema, new Uint8Array(await binary.arrayBuffer()));
  const plain = await post(json, { "content-type": "application/json" });
  expect(plain.status).toBe(200);
  answers.connectJson = fromJson(ListAgentsResponseSchema, (await plain.json()) as never);
  const compressed = await post(gzipSync(json), { "content-type": "application/json", "content-encoding": "gzip" });
  expect(compressed.status).toBe(200);
  answers.connectJsonThroughConnectNode = fromJson(ListAgentsResponseSchema, (await compressed.json()) as never);
  return Object.fromEntries(Object.entries(answers).map(([name, answer]) => [name, toJson(ListAgentsResponseSchema, answer)]));
}

function expectAllEqual(answers: Record<string, unknown>): unknown {
  const [first, ...rest] = Object.values(answers);
  for (const other of rest) expect(other).toEqual(first);
  return first;
}

describe("ListAgents from the cache of encoded agents", () => {
  it("answers the same agents, inventory and liveness fields over gRPC, Connect binary and Connect JSON", async () => {
    await grpc.register(node(A, "gpu-a", { zone: "eu" }, "llama3.1:8b"));
    await grpc.register(node(B, "gpu-b", { zone: "us", team: "ñandú-🦙-فريق" }, "qwen2.5:72b"));
    const answer = expectAllEqual(await everyEncoding()) as { agents: Array<{ id: string; labels: unknown; models: Array<{ name: string }> }> };
    expect(answer.agents.map((agent) => agent.id)).toEqual([A, B]);
    expect(answer.agents[1]?.models[0]?.name).toBe("qwen2.5:72b");
    expect(answer.agents[1]?.labels).toEqual({ zone: "us", team: "ñandú-🦙-فريق" });
    expect(answer.agents[0]?.labels).toEqual({ zone: "eu" });
  });

  it("shows a re-Register's new labels and inventory, and a removed agent gone, on every path", async () => {
    await grpc.register(node(A, "gpu-a", { zone: "eu" }, "llama3.1:8b"));
    await grpc.register(node(B, "gpu-b", { zone: "us" }, "qwen2.5:72b"));
    await grpc.register(node(C, "gpu-c", { zone: "us" }, "qwen2.5:72b"));
    expectAllEqual(await everyEncoding()); // every agent encoded once

    await grpc.register(node(A, "gpu-a", { zone: "ap" }, "mistral:7b"));
    await grpc.deregister(C);
    const answer = expectAllEqual(await everyEncoding()) as { agents: Array<{ id: string; labels: unknown; models: Array<{ name: string }> }> };
    expect(answer.agents.map((agent) => agent.id)).toEqual([A, B]);
    expect(answer.agents[0]?.labels).toEqual({ zone: "ap" });
    expect(answer.agents[0]?.models.map((model) => model.name)).toEqual(["mistral:7b"]);
    expectAllEqual(await everyEncoding({ labelSelector: "zone=us" }));
  });

  it("shows each beat's last_heartbeat, which moves without a change the cache sees", async () => {
    const registered = await grpc.register(node(A, "gpu-a", {}, "llama3.1:8b"));
    const before = await grpc.listAgents();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const stream = grpc.heartbeat();
    stream.send({ agentId: A, agentSecret: registered.agentSecret, seq: 1n });
    const ack = await stream.recv();
    const answers = await everyEncoding();
    expectAllEqual(answers);
    const after = await grpc.listAgents();
    stream.end();
    const beatAt = timestampMs(after.agents[0]?.lastHeartbeat ?? { seconds: 0n, nanos: 0 } as never);
    expect(beatAt).toBe(timestampMs(ack.serverTime as never));
    expect(beatAt).toBeGreaterThan(timestampMs(before.agents[0]?.lastHeartbeat as never));
    expect(after.agents[0]?.streamConnected).toBe(true);
  });

  it("refuses a JSON request with an unknown field as INVALID_ARGUMENT, naming the field, as connect-node does", async () => {
    const fast = await post('{"pageSize": 10, "colour": "red"}', { "content-type": "application/json" });
    const slow = await post(gzipSync('{"pageSize": 10, "colour": "red"}'), { "content-type": "application/json", "content-encoding": "gzip" });
    expect(fast.status).toBe(400);
    expect(await fast.json()).toEqual(await slow.json());
  });
});
