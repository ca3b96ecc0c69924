// TLS and mutual TLS on both listeners, with certificates made by openssl at test time: clients that trust
// the CA get through and others do not; under mutual TLS a client certificate is required and its subject
// OU is its role; the node daemon and the CLI connect over TLS with --ca and a token.

import { createHash } from "node:crypto";
import { readFile, rm, stat } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NO_SECURITY, type SecurityConfig, parseTokenList } from "../../src/config/index.js";
import { type AgentProcess, startAgentProcess } from "../support/agent-process.js";
import { type TestCerts, makeTestCerts } from "../support/certs.js";
import { runCli } from "../support/cli-process.js";
import { type ClientOptions, type RegistryClient, connectClient, grpcClient, rejection } from "../support/clients.js";
import { type FakeOllama, startFakeOllama } from "../support/fake-ollama.js";
import { storedAgents } from "../support/stored-agents.js";
import { type TestServer, makeDataDir, startTestServer } from "../support/test-server.js";

const TOKENS = { agent: "agent-token-0000000000000001", reader: "reader-token-000000000000001", admin: "admin-token-0000000000000001" };
const tokens = parseTokenList(`agent:${TOKENS.agent},reader:${TOKENS.reader},admin:${TOKENS.admin}`, "REGISTRY_TOKENS");

let certs: TestCerts;
const servers: TestServer[] = [];
const clients: RegistryClient[] = [];

beforeAll(async () => {
  certs = await makeTestCerts();
});

afterAll(async () => {
  await certs.remove();
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.dispose();
});

function tls(options: { clientCa?: boolean; withTokens?: boolean } = {}): SecurityConfig {
  return {
    ...NO_SECURITY,
    tokens: options.withTokens === true ? tokens : [],
    tls: { certFile: certs.server.cert, keyFile: certs.server.key, clientCaFile: options.clientCa === true ? certs.ca : undefined },
  };
}

async function server(security: SecurityConfig): Promise<TestServer> {
  const started = await startTestServer({ security });
  servers.push(started);
  return started;
}

/** Client TLS options from files: the CA, and a client certificate by role. */
async function trust(
  ca: string | undefined,
  client?: keyof TestCerts["client"] | "stranger",
): Promise<NonNullable<ClientOptions["tls"]>> {
  const pair = client === undefined ? undefined : client === "stranger" ? certs.strangerAdmin : certs.client[client];
  return {
    ...(ca === undefined ? {} : { ca: await readFile(ca) }),
    ...(pair === undefined ? {} : { cert: await readFile(pair.cert), key: await readFile(pair.key) }),
  };
}

const transports = [
  { name: "gRPC (grpc-js)", grpc: true, connect: (of: TestServer, options: ClientOptions) => grpcClient(of.grpcAddress, options) },
  { name: "Connect", grpc: false, connect: (of: TestServer, options: ClientOptions) => connectClient(of.httpUrl, options) },
];

/** GET over HTTPS/1.1 (Node's https module, ALPN http/1.1), trusting `ca`. */
function httpsGet(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.once("error", reject);
    req.end();
  });
}

describe.each(transports)("TLS over $name", ({ connect, grpc }) => {
  const as = (of: TestServer, options: ClientOptions): RegistryClient => {
    const made = connect(of, options);
    clients.push(made);
    return made;
  };

  it("serves a client that trusts the CA", async () => {
    const registry = await server(tls({ withTokens: true }));
    expect(registry.httpUrl).toMatch(/^https:\/\//);
    const agent = as(registry, { token: TOKENS.agent, tls: await trust(certs.ca) });
    const { agent: registered } = await agent.register({ hostname: "gpu-01" });
    const reader = as(registry, { token: TOKENS.reader, tls: await trust(certs.ca) });
    expect((await reader.listAgents()).agents.map((each) => each.id)).toEqual([registered?.id]);
  });

  it.each([
    { what: "trusts only Node's own CAs", ca: undefined },
    { what: "trusts another CA", ca: "other" },
  ])("fails for a client that $what", async ({ ca }) => {
    const registry = await server(tls());
    const client = as(registry, { tls: await trust(ca === undefined ? undefined : certs.otherCa) });
    const error = await rejection(client.listAgents());
    // grpc-js reports a failed handshake as UNAVAILABLE, connect-node as INTERNAL with Node's TLS error.
    expect(error.code).toBe(grpc ? Code.Unavailable : Code.Internal);
    if (!grpc) expect(error.message).toMatch(/certificate/i);
  });

  it("fails for a plaintext client", async () => {
    const registry = await server(tls());
    const plaintextUrl = registry.httpUrl.replace(/^https:/, "http:");
    const client = grpc ? grpcClient(registry.grpcAddress) : connectClient(plaintextUrl);
    clients.push(client);
    expect((await rejection(client.listAgents())).code).not.toBe(0);
  });
});

describe("TLS on the HTTP listener for HTTP/1.1 clients", () => {
  it("serves curl-style HTTPS/1.1 (ALPN) for the probes and the CLI", async () => {
    const registry = await server(tls({ withTokens: true }));
    expect(await httpsGet(`${registry.httpUrl}/healthz`, await readFile(certs.ca))).toBe(200);
    const agent = grpcClient(registry.grpcAddress, { token: TOKENS.agent, tls: await trust(certs.ca) });
    clients.push(agent);
    await agent.register({ hostname: "gpu-01" });

    const listed = await runCli(["list", "--url", registry.httpUrl, "--ca", certs.ca], { REGISTRY_TOKEN: TOKENS.reader });
    expect(listed.stderr).toBe("");
    expect(listed.stdout).toMatch(/^HOSTNAME .*\ngpu-01 /);

    const untrusted = await runCli(["list", "--url", registry.httpUrl], { REGISTRY_TOKEN: TOKENS.reader });
    expect([untrusted.code, untrusted.stderr]).toEqual([1, expect.stringContaining("not signed by a CA this machine trusts; give the CA with --ca")]);
    const tokenless = await runCli(["list", "--url", registry.httpUrl, "--ca", certs.ca]);
    expect([tokenless.code, tokenless.stderr]).toEqual([1, expect.stringMatching(/^agent-registry: the registry at .* wants credentials for ListAgents/)]);
  });
});

describe.each(transports)("mutual TLS over $name", ({ connect, grpc }) => {
  const as = (of: TestServer, options: ClientOptions): RegistryClient => {
    const made = connect(of, options);
    clients.push(made);
    return made;
  };

  it("refuses a client without a certificate", async () => {
    const registry = await server(tls({ clientCa: true }));
    const error = await rejection(as(registry, { tls: await trust(certs.ca) }).listAgents());
    // gRPC: grpc-js requires the certificate in the handshake. HTTP: the handshake lets the probes through
    // without one; every RPC is then refused.
    expect(error.code).toBe(grpc ? Code.Unavailable : Code.Unauthenticated);
  });

  it("refuses a certificate from another CA, whatever role it names", async () => {
    const registry = await server(tls({ clientCa: true }));
    const error = await rejection(as(registry, { tls: await trust(certs.ca, "stranger") }).listAgents());
    expect(error.code).toBe(grpc ? Code.Unavailable : Code.Unauthenticated);
  });

  it("gives a certificate with OU=reader the reader role: it may list but not register", async () => {
    const registry = await server(tls({ clientCa: true }));
    const reader = as(registry, { tls: await trust(certs.ca, "reader") });
    expect((await reader.listAgents()).agents).toEqual([]);
    const error = await rejection(reader.register({ hostname: "gpu-01" }));
    expect([error.code, error.message]).toEqual([Code.PermissionDenied, "the reader role may not call Register; it takes the agent or admin role"]);
  });

  it("gives a certificate with OU=agent the agent role: it may register but not list", async () => {
    const registry = await server(tls({ clientCa: true }));
    const agent = as(registry, { tls: await trust(certs.ca, "agent") });
    expect((await agent.register({ hostname: "gpu-01" })).agentSecret).not.toBe("");
    expect((await rejection(agent.listAgents())).code).toBe(Code.PermissionDenied);
  });

  it("wants a token from a certificate that names no role, and lets a token decide over the certificate's role", async () => {
    const registry = await server(tls({ clientCa: true, withTokens: true }));
    const nobody = await rejection(as(registry, { tls: await trust(certs.ca, "nobody") }).listAgents());
    expect([nobody.code, nobody.message]).toEqual([Code.Unauthenticated, expect.stringContaining("CN=nobody names no role")]);
    const readerWithAdminToken = as(registry, { token: TOKENS.admin, tls: await trust(certs.ca, "reader") });
    await readerWithAdminToken.register({ hostname: "gpu-01" });
  });
});

describe("the HTTP probes under mutual TLS", () => {
  it("answer a client without a certificate (load balancers and Prometheus rarely have one)", async () => {
    const registry = await server(tls({ clientCa: true }));
    expect(await httpsGet(`${registry.httpUrl}/healthz`, await readFile(certs.ca))).toBe(200);
    expect(await httpsGet(`${registry.httpUrl}/metrics`, await readFile(certs.ca))).toBe(200);
  });
});

describe("the node daemon over TLS", () => {
  let ollama: FakeOllama;
  let stateDir: string;
  let daemon: AgentProcess | undefined;

  beforeAll(async () => {
    ollama = await startFakeOllama({ version: "0.5.7" });
  });

  afterAll(async () => {
    await ollama.close();
  });

  afterEach(async () => {
    if (daemon !== undefined && daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill("SIGKILL");
    await daemon?.exited;
    daemon = undefined;
    await rm(stateDir, { recursive: true, force: true });
  });

  it("registers and beats with --ca and a token, and keeps its secret beside its id in a 0600 state file", async () => {
    stateDir = await makeDataDir();
    const registry = await server(tls({ withTokens: true }));
    const stateFile = join(stateDir, "agent-state.json");
    daemon = await startAgentProcess(
      ["--registry-addr", registry.grpcAddress, "--ca", certs.ca, "--hostname", "gpu-tls", "--state-file", stateFile, "--ollama-url", ollama.url],
      { REGISTRY_TOKEN: TOKENS.agent },
    );
    const reader = grpcClient(registry.grpcAddress, { token: TOKENS.reader, tls: await trust(certs.ca) });
    clients.push(reader);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const agent = (await reader.listAgents()).agents.find((each) => each.id === daemon?.agentId);
      if (agent?.streamConnected === true) break;
      if (Date.now() > deadline) throw new Error(`the daemon never connected; its log: ${daemon.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const state = JSON.parse(await readFile(stateFile, "utf8")) as { agent_id: string; agent_secret: string };
    expect(state.agent_id).toBe(daemon.agentId);
    expect((await stat(stateFile)).mode & 0o777).toBe(0o600);
    const [stored] = await storedAgents(registry.dataDir);
    expect(stored?.secretHash).toBe(`sha256:${createHash("sha256").update(state.agent_secret).digest("hex")}`);

    daemon.child.kill("SIGTERM");
    expect((await daemon.exited).code).toBe(0);
  });
});
