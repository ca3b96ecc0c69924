// gRPC server reflection on the gRPC port, through a real reflection client: `buf curl` (the same
// protocol grpcurl speaks) with no schema but what the server describes, once over
// grpc.reflection.v1.ServerReflection and once over grpc.reflection.v1alpha.ServerReflection.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RegistryClient, grpcClient } from "../support/clients.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

interface BufResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `buf curl` against the grpc-js listener (gRPC over h2c), feeding `stdin` when given. */
function bufCurl(args: readonly string[], stdin?: string): Promise<BufResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? "");
  });
}

/** `buf curl` prints each response message as an indented JSON object; a stream prints one after another. */
function jsonMessages(stdout: string): unknown[] {
  return stdout
    .split(/\n(?=\{)/)
    .filter((part) => part.trim() !== "")
    .map((part) => JSON.parse(part) as unknown);
}

async function succeeded(run: Promise<BufResult>): Promise<string> {
  const result = await run;
  expect(result, result.stderr).toMatchObject({ code: 0, stderr: "" });
  return result.stdout;
}

describe.each(["grpc-v1", "grpc-v1alpha"])("server reflection with buf curl --reflect-protocol %s", (reflectProtocol) => {
  let server: TestServer;
  let client: RegistryClient;
  let url: string;
  const reflect = ["--reflect-protocol", reflectProtocol];

  beforeAll(async () => {
    server = await startTestServer();
    client = grpcClient(server.grpcAddress);
    url = `http://${server.grpcAddress}`;
  });

  afterAll(async () => {
    client.close();
    await server.dispose();
  });

  it("lists the registry and health services", async () => {
    const services = (await succeeded(bufCurl([...reflect, "--list-services", url]))).trim().split("\n");
    expect(services).toEqual(expect.arrayContaining(["registry.v1.AgentRegistry", "grpc.health.v1.Health"]));
  });

  it("lists the six AgentRegistry methods", async () => {
    const methods = (await succeeded(bufCurl([...reflect, "--list-methods", url]))).trim().split("\n");
    expect(methods.filter((method) => method.startsWith("registry.v1.AgentRegistry/"))).toEqual(
      ["Deregister", "GetAgent", "Heartbeat", "ListAgents", "Register", "WatchAgents"].map(
        (method) => `registry.v1.AgentRegistry/${method}`,
      ),
    );
  });

  it("calls the unary ListAgents from the reflected schema", async () => {
    const { agent } = await client.register({ hostname: `gpu-${reflectProtocol}`, ipAddress: "10.0.0.7" });
    const stdout = await succeeded(bufCurl([...reflect, "-d", "{}", `${url}/registry.v1.AgentRegistry/ListAgents`]));
    expect(jsonMessages(stdout)).toEqual([
      {
        agents: expect.arrayContaining([
          expect.objectContaining({ id: agent?.id, hostname: `gpu-${reflectProtocol}`, status: "AGENT_STATUS_ONLINE" }),
        ]),
      },
    ]);
  });

  it("checks health the way an operator does, from the reflected grpc.health.v1 schema", async () => {
    const stdout = await succeeded(bufCurl([...reflect, "-d", "{}", `${url}/grpc.health.v1.Health/Check`]));
    expect(jsonMessages(stdout)).toEqual([{ status: "SERVING" }]);
  });

  it("holds a bidi Heartbeat stream fed from stdin, one ack per beat echoing its seq", async () => {
    const { agent } = await client.register({ hostname: `beat-${reflectProtocol}`, ipAddress: "10.0.0.8" });
    const beats = `${JSON.stringify({ agentId: agent?.id, seq: "1" })}\n${JSON.stringify({ seq: "2" })}\n`;
    const stdout = await succeeded(bufCurl([...reflect, "-d", "@-", `${url}/registry.v1.AgentRegistry/Heartbeat`], beats));
    expect(jsonMessages(stdout)).toEqual([
      expect.objectContaining({ seq: "1", status: "AGENT_STATUS_ONLINE", heartbeatInterval: "30s" }),
      expect.objectContaining({ seq: "2", status: "AGENT_STATUS_ONLINE", heartbeatInterval: "30s" }),
    ]);
  });
});

describe("server reflection on a server that has answered none yet", () => {
  it("answers the first calls, v1 and v1alpha at once, while it loads the reflection library", async () => {
    const server = await startTestServer();
    try {
      const url = `http://${server.grpcAddress}`;
      const outputs = await Promise.all(
        ["grpc-v1", "grpc-v1alpha", "grpc-v1"].map((protocol) => succeeded(bufCurl(["--reflect-protocol", protocol, "--list-services", url]))),
      );
      for (const stdout of outputs) expect(stdout.trim().split("\n")).toEqual(expect.arrayContaining(["registry.v1.AgentRegistry", "grpc.health.v1.Health"]));
    } finally {
      await server.dispose();
    }
  });
});
