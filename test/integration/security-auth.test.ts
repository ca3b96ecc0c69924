// Bearer tokens and roles, and per-agent secrets, against a real server over both transports: who may call
// what, what an unauthorized caller learns (nothing), and that one agent token holder cannot take over,
// beat for or remove another node's id.

import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { NO_SECURITY, type SecurityConfig, parseTokenList } from "../../src/config/index.js";
import { type ClientOptions, type RegistryClient, connectClient, grpcClient, rejection } from "../support/clients.js";
import { healthClient } from "../support/health-client.js";
import { onDisk, seedPrototypeAgents, storedAgents } from "../support/stored-agents.js";
import { type TestServer, makeDataDir, startTestServer } from "../support/test-server.js";

const TOKENS = {
  agent: "agent-token-0000000000000001",
  otherAgent: "agent-token-0000000000000002",
  reader: "reader-token-000000000000001",
  admin: "admin-token-0000000000000001",
} as const;

const WITH_TOKENS: SecurityConfig = {
  ...NO_SECURITY,
  tokens: parseTokenList(
    `agent:${TOKENS.agent},agent:${TOKENS.otherAgent},reader:${TOKENS.reader},admin:${TOKENS.admin}`,
    "REGISTRY_TOKENS",
  ),
};

const VICTIM = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";
const UNKNOWN = "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48";

const transports = [
  { name: "gRPC (grpc-js)", connect: (server: TestServer, options: ClientOptions) => grpcClient(server.grpcAddress, options) },
  { name: "Connect", connect: (server: TestServer, options: ClientOptions) => connectClient(server.httpUrl, options) },
];

type Rpc = (client: RegistryClient, agentId: string) => Promise<unknown>;

/** Every AgentRegistry RPC once, settling when its first answer (or refusal) arrives. */
const RPCS: Readonly<Record<string, Rpc>> = {
  Register: (client, agentId) => client.register({ agentId, hostname: "gpu-01" }),
  Heartbeat: async (client, agentId) => {
    const beat = client.heartbeat();
    beat.send({ agentId, seq: 1n });
    try {
      return await beat.recv();
    } finally {
      beat.cancel();
    }
  },
  ListAgents: (client) => client.listAgents(),
  GetAgent: (client, agentId) => client.getAgent(agentId),
  Deregister: (client, agentId) => client.deregister(agentId),
  WatchAgents: async (client) => {
    const watch = client.watch();
    try {
      return await watch.recv();
    } finally {
      watch.cancel();
    }
  },
};

/** A role the method does not take. */
const WRONG_ROLE: Readonly<Record<string, keyof typeof TOKENS>> = {
  Register: "reader",
  Heartbeat: "reader",
  Deregister: "reader",
  ListAgents: "agent",
  GetAgent: "agent",
  WatchAgents: "agent",
};

const servers: TestServer[] = [];
const clients: RegistryClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.dispose();
});

async function server(security: SecurityConfig = WITH_TOKENS, dataDir?: string): Promise<TestServer> {
  const started = await startTestServer({ security, ...(dataDir === undefined ? {} : { dataDir }) });
  servers.push(started);
  return started;
}

describe.each(transports)("bearer tokens over $name", ({ connect }) => {
  const as = (of: TestServer, token?: string): RegistryClient => {
    const made = connect(of, token === undefined ? {} : { token });
    clients.push(made);
    return made;
  };

  it.each(Object.keys(RPCS))("refuses %s without a token with UNAUTHENTICATED", async (method) => {
    const registry = await server();
    const error = await rejection((RPCS[method] as Rpc)(as(registry), VICTIM));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.message).toContain("authorization: Bearer");
  });

  it.each(Object.keys(RPCS))("refuses %s with an unknown token with UNAUTHENTICATED", async (method) => {
    const registry = await server();
    const error = await rejection((RPCS[method] as Rpc)(as(registry, "not-a-token-this-server-knows"), VICTIM));
    expect(error.code).toBe(Code.Unauthenticated);
  });

  it.each(Object.keys(RPCS))("refuses %s with a token of the wrong role with PERMISSION_DENIED", async (method) => {
    const registry = await server();
    const role = WRONG_ROLE[method] as keyof typeof TOKENS;
    const error = await rejection((RPCS[method] as Rpc)(as(registry, TOKENS[role]), VICTIM));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.message).toContain(`the ${role} role may not call ${method}`);
  });

  it("lets an agent register and beat, a reader list, get and watch, and an admin do all of it", async () => {
    const registry = await server();
    const agent = as(registry, TOKENS.agent);
    const { agent: registered, agentSecret } = await agent.register({ agentId: VICTIM, hostname: "gpu-01" });
    expect(registered?.id).toBe(VICTIM);
    const beat = agent.heartbeat();
    beat.send({ agentId: VICTIM, seq: 1n, agentSecret });
    expect((await beat.recv()).seq).toBe(1n);
    beat.end();

    const reader = as(registry, TOKENS.reader);
    expect((await reader.listAgents()).agents.map((each) => each.id)).toEqual([VICTIM]);
    expect((await reader.getAgent(VICTIM)).agent?.hostname).toBe("gpu-01");
    const watch = reader.watch();
    expect((await watch.recv()).agent?.id).toBe(VICTIM);
    watch.cancel();

    const admin = as(registry, TOKENS.admin);
    expect((await admin.listAgents()).agents).toHaveLength(1);
    await admin.register({ hostname: "gpu-02" });
    await admin.deregister(VICTIM);
    expect((await admin.listAgents()).agents.map((each) => each.hostname)).toEqual(["gpu-02"]);
  });

  it.each([
    { who: "no token", token: undefined, method: "GetAgent" },
    { who: "no token", token: undefined, method: "Deregister" },
    { who: "no token", token: undefined, method: "Heartbeat" },
    { who: "an unknown token", token: "not-a-token-this-server-knows", method: "GetAgent" },
    { who: "an unknown token", token: "not-a-token-this-server-knows", method: "Deregister" },
    { who: "a reader token", token: TOKENS.reader, method: "Deregister" },
    { who: "a reader token", token: TOKENS.reader, method: "Heartbeat" },
    { who: "an agent token", token: TOKENS.agent, method: "GetAgent" },
  ])("answers $method with $who the same for an unknown id as for an existing one", async ({ token, method }) => {
    const registry = await server();
    await as(registry, TOKENS.agent).register({ agentId: VICTIM, hostname: "gpu-01" });
    const rpc = RPCS[method] as Rpc;
    const known = await rejection(rpc(as(registry, token), VICTIM));
    const unknown = await rejection(rpc(as(registry, token), UNKNOWN));
    expect([unknown.code, unknown.message]).toEqual([known.code, known.message]);
    expect([Code.Unauthenticated, Code.PermissionDenied]).toContain(known.code);
    expect(known.message).not.toContain(VICTIM);
  });

  it("lets an agent deregister itself with its secret but not another agent, and an admin deregister anyone", async () => {
    const registry = await server();
    const own = await as(registry, TOKENS.agent).register({ agentId: VICTIM, hostname: "gpu-01" });
    const other = await as(registry, TOKENS.otherAgent).register({ hostname: "gpu-02" });
    const otherId = other.agent?.id ?? "";

    const refused = await rejection(as(registry, TOKENS.agent).deregister(otherId, own.agentSecret));
    expect(refused.code).toBe(Code.PermissionDenied);

    await as(registry, TOKENS.agent).deregister(VICTIM, own.agentSecret);
    await as(registry, TOKENS.admin).deregister(otherId);
    expect((await as(registry, TOKENS.reader).listAgents()).agents).toEqual([]);
  });
});

describe.each(transports)("agent secrets over $name", ({ connect }) => {
  const as = (of: TestServer, token: string): RegistryClient => {
    const made = connect(of, { token });
    clients.push(made);
    return made;
  };

  it("refuses a second agent token holder who re-registers, beats for or deregisters the id, and leaves the victim as it was", async () => {
    const registry = await server();
    const victim = as(registry, TOKENS.agent);
    const { agentSecret } = await victim.register({ agentId: VICTIM, hostname: "gpu-01", ipAddress: "10.0.0.1", labels: { gpu: "a100" } });
    const before = await onDisk(registry.dataDir);
    const attacker = as(registry, TOKENS.otherAgent);

    const takeover = await rejection(attacker.register({ agentId: VICTIM, hostname: "evil", ipAddress: "10.6.6.6" }));
    expect(takeover.code).toBe(Code.PermissionDenied);
    expect(takeover.message).toContain(`agent ${VICTIM} is held by another node's secret`);
    expect(takeover.message).toContain("an admin deregisters");
    const guessed = await rejection(attacker.register({ agentId: VICTIM, hostname: "evil", agentSecret: "x".repeat(43) }));
    expect([guessed.code, guessed.message]).toEqual([Code.PermissionDenied, expect.stringContaining("does not match")]);

    const beat = attacker.heartbeat();
    beat.send({ agentId: VICTIM, seq: 1n, leaving: true });
    expect((await rejection(beat.recv())).code).toBe(Code.PermissionDenied);

    expect((await rejection(attacker.deregister(VICTIM))).code).toBe(Code.PermissionDenied);
    expect((await rejection(attacker.deregister(VICTIM, "x".repeat(43)))).code).toBe(Code.PermissionDenied);

    const { agent } = await as(registry, TOKENS.reader).getAgent(VICTIM);
    expect(agent).toMatchObject({ hostname: "gpu-01", ipAddress: "10.0.0.1", status: AgentStatus.ONLINE, labels: { gpu: "a100" } });
    expect(await onDisk(registry.dataDir)).toEqual(before);

    // The victim itself goes on as before: it re-registers and beats with its secret.
    const again = await victim.register({ agentId: VICTIM, hostname: "gpu-01", ipAddress: "10.0.0.1", agentSecret });
    expect(again.agentSecret).toBe("");
    const own = victim.heartbeat();
    own.send({ agentId: VICTIM, seq: 1n, agentSecret });
    expect((await own.recv()).status).toBe(AgentStatus.ONLINE);
    own.end();
  });

  it("keeps only the secret's SHA-256 in the store, never the secret", async () => {
    const registry = await server();
    const { agentSecret } = await as(registry, TOKENS.agent).register({ agentId: VICTIM, hostname: "gpu-01" });
    expect(agentSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const name of await readdir(registry.dataDir)) {
      expect(await readFile(join(registry.dataDir, name), "latin1")).not.toContain(agentSecret);
    }
    const [stored] = await storedAgents(registry.dataDir);
    expect(stored?.secretHash).toBe(`sha256:${createHash("sha256").update(agentSecret).digest("hex")}`);
  });

  it("still refuses the hijack after a restart: the hash is loaded from the file", async () => {
    const dataDir = await makeDataDir();
    const first = await server(WITH_TOKENS, dataDir);
    const { agentSecret } = await as(first, TOKENS.agent).register({ agentId: VICTIM, hostname: "gpu-01" });
    await first.close();
    servers.splice(servers.indexOf(first), 1);

    const second = await server(WITH_TOKENS, dataDir);
    expect((await rejection(as(second, TOKENS.otherAgent).register({ agentId: VICTIM, hostname: "evil" }))).code).toBe(Code.PermissionDenied);
    await as(second, TOKENS.agent).register({ agentId: VICTIM, hostname: "gpu-01", agentSecret });
  });
});

describe("agent secrets with authentication off, and turning it on later", () => {
  it("issues and stores secrets with authentication off, but does not ask for them", async () => {
    const registry = await server(NO_SECURITY);
    const client = grpcClient(registry.grpcAddress);
    clients.push(client);
    const first = await client.register({ agentId: VICTIM, hostname: "gpu-01" });
    expect(first.agentSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const again = await client.register({ agentId: VICTIM, hostname: "gpu-01b" });
    expect(again.agentSecret).toBe("");
    await client.deregister(VICTIM);
  });

  it("protects agents registered while authentication was off once it is turned on", async () => {
    const dataDir = await makeDataDir();
    const open = await server(NO_SECURITY, dataDir);
    const plain = grpcClient(open.grpcAddress);
    const { agentSecret } = await plain.register({ agentId: VICTIM, hostname: "gpu-01" });
    plain.close();
    await open.close();
    servers.splice(servers.indexOf(open), 1);

    const secured = await server(WITH_TOKENS, dataDir);
    const intruder = grpcClient(secured.grpcAddress, { token: TOKENS.otherAgent });
    const owner = grpcClient(secured.grpcAddress, { token: TOKENS.agent });
    clients.push(intruder, owner);
    expect((await rejection(intruder.register({ agentId: VICTIM, hostname: "evil" }))).code).toBe(Code.PermissionDenied);
    expect((await owner.register({ agentId: VICTIM, hostname: "gpu-01", agentSecret })).agent?.id).toBe(VICTIM);
  });

  it("gives an agent from the prototype's file (no secret yet) one at its next Register: trust on first use", async () => {
    const dataDir = await makeDataDir();
    await seedPrototypeAgents(dataDir);
    const registry = await server(WITH_TOKENS, dataDir);
    const reader = grpcClient(registry.grpcAddress, { token: TOKENS.reader });
    const agent = grpcClient(registry.grpcAddress, { token: TOKENS.agent });
    const other = grpcClient(registry.grpcAddress, { token: TOKENS.otherAgent });
    const admin = grpcClient(registry.grpcAddress, { token: TOKENS.admin });
    clients.push(reader, agent, other, admin);
    const [first, second] = (await reader.listAgents()).agents;
    const id = first?.id ?? "";

    // Nothing proves who may remove an agent without a secret, so only an admin may.
    const refused = await rejection(agent.deregister(id));
    expect([refused.code, refused.message]).toEqual([Code.PermissionDenied, expect.stringContaining("only an admin")]);

    const { agentSecret } = await agent.register({ agentId: id, hostname: first?.hostname ?? "" });
    expect(agentSecret).not.toBe("");
    expect((await rejection(other.register({ agentId: id, hostname: "evil" }))).code).toBe(Code.PermissionDenied);
    await admin.deregister(second?.id ?? "");
  });
});

describe("the authorization header", () => {
  it("takes the Bearer scheme in any case, and refuses anything but `Bearer <token>` with UNAUTHENTICATED", async () => {
    const registry = await server();
    const list = (authorization: string): Promise<Response> =>
      fetch(`${registry.httpUrl}/registry.v1.AgentRegistry/ListAgents`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: "{}",
      });
    expect((await list(`bearer ${TOKENS.reader}`)).status).toBe(200);
    for (const wrong of [TOKENS.reader, `Basic ${TOKENS.reader}`, `Bearer ${TOKENS.reader} ${TOKENS.admin}`]) {
      const response = await list(wrong);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ code: "unauthenticated", message: expect.stringContaining("Bearer <token>") as unknown });
    }
  });
});

describe("what stays open with authentication on", () => {
  it("serves grpc.health.v1.Health, /healthz, /readyz and /metrics without a token", async () => {
    const registry = await server();
    const health = healthClient(registry.grpcAddress);
    try {
      expect(await health.check()).toBe("SERVING");
    } finally {
      health.close();
    }
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      expect((await fetch(`${registry.httpUrl}${path}`)).status).toBe(200);
    }
  });

  it("serves server reflection without a token (buf curl --list-services), but not the calls it describes", async () => {
    const registry = await server();
    const buf = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
    const run = (args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve, reject) => {
        const child = spawn(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.once("error", reject);
        child.once("close", (code) => resolve({ code, stdout, stderr }));
      });
    const services = await run(["--list-services", `http://${registry.grpcAddress}`]);
    expect(services.stdout).toContain("registry.v1.AgentRegistry");
    const list = await run(["-d", "{}", `http://${registry.grpcAddress}/registry.v1.AgentRegistry/ListAgents`]);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toContain("unauthenticated");
  });
});
