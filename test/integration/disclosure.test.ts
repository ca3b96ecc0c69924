// What the open endpoints and store errors reveal with authentication on: /healthz, /readyz, /metrics and
// grpc.health name no file path, host name or store error text, and a Register refused because the store
// cannot write names the problem, not agents.json's path, except to an admin. Over both transports.

import { hostname } from "node:os";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { NO_SECURITY, type SecurityConfig, parseTokenList } from "../../src/config/index.js";
import { type ClientOptions, type RegistryClient, connectClient, grpcClient, rejection } from "../support/clients.js";
import { healthClient } from "../support/health-client.js";
import { type BreakableServer, canBreakStore, startBreakableServer } from "../support/store-trouble.js";
import type { TestServer } from "../support/test-server.js";

const TOKENS = { agent: "agent-token-0000000000000001", admin: "admin-token-0000000000000001" };
const WITH_TOKENS: SecurityConfig = {
  ...NO_SECURITY,
  tokens: parseTokenList(`agent:${TOKENS.agent},admin:${TOKENS.admin}`, "REGISTRY_TOKENS"),
};

const transports = [
  { name: "gRPC (grpc-js)", connect: (server: TestServer, options: ClientOptions) => grpcClient(server.grpcAddress, options) },
  { name: "Connect", connect: (server: TestServer, options: ClientOptions) => connectClient(server.httpUrl, options) },
];

const breakables: BreakableServer[] = [];
const clients: Array<{ close(): void }> = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const breakable of breakables.splice(0)) await breakable.dispose();
});

async function brokenServer(security: SecurityConfig): Promise<{ server: TestServer; problem: RegExp }> {
  const breakable = await startBreakableServer({ security });
  breakables.push(breakable);
  // A first agent, so the store has written its file before it breaks.
  const first = grpcClient(breakable.server.grpcAddress, { token: TOKENS.admin });
  clients.push(first);
  await first.register({ hostname: "gpu-0", ipAddress: "10.0.0.1" });
  const { problem } = await breakable.breakWrites();
  return { server: breakable.server, problem };
}

async function get(server: TestServer, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${server.httpUrl}${path}`);
  return { status: response.status, body: await response.text() };
}

/** What must not appear: the data directory (and so every file in it) and this machine's name. */
function expectNothingPrivate(text: string, server: TestServer): void {
  expect(text).not.toContain(server.dataDir);
  if (hostname().length >= 4) expect(text).not.toContain(hostname());
}

describe.runIf(canBreakStore).each(transports)("a store that cannot write, with authentication on, over $name", ({ connect }) => {
  const as = (server: TestServer, token: string): RegistryClient => {
    const client = connect(server, { token });
    clients.push(client);
    return client;
  };

  it("is named as a problem to an agent, without the file's path", async () => {
    const { server } = await brokenServer(WITH_TOKENS);

    const refused = await rejection(as(server, TOKENS.agent).register({ hostname: "gpu-1", ipAddress: "10.0.0.1" }));

    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.message).toMatch(/^the store cannot write: .*; the change was not acknowledged: retry once the store is writable$/);
    expectNothingPrivate(refused.message, server);
  });

  it("is named with the file and the system's own words to an admin", async () => {
    const { server, problem } = await brokenServer(WITH_TOKENS);

    const refused = await rejection(as(server, TOKENS.admin).register({ hostname: "gpu-1", ipAddress: "10.0.0.1" }));

    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.message).toContain(server.dataFile);
    expect(refused.message).toMatch(problem);
  });
});

describe.runIf(canBreakStore)("the open endpoints, with authentication on and the store failing", () => {
  it("say not ready without the store's path or error text, which the log keeps", async () => {
    const { server } = await brokenServer(WITH_TOKENS);
    // A refused write makes the server notice at once.
    const agent = connectClient(server.httpUrl, { token: TOKENS.agent });
    clients.push(agent);
    await rejection(agent.register({ hostname: "gpu-1", ipAddress: "10.0.0.1" }));
    const health = healthClient(server.grpcAddress);
    clients.push(health);

    const ready = await get(server, "/readyz");

    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/^not ready: the store cannot write: .+\n$/);
    expectNothingPrivate(ready.body, server);
    expect(server.serving.notReadyReason).toContain(server.dataFile);
    expect(await health.check("")).toBe("NOT_SERVING");
    for (const path of ["/healthz", "/metrics", "/nowhere"]) expectNothingPrivate((await get(server, path)).body, server);
    // A path is echoed cut short and quoted, never whole (it may be kilobytes of anything).
    const long = await get(server, `/${"x".repeat(8000)}`);
    expect(long.status).toBe(404);
    expect(long.body).toMatch(/^no such path: "\/x{79}\.\.\."; try /);
  });
});

describe.runIf(canBreakStore)("/readyz on loopback with authentication off", () => {
  it("tells whoever asks what the store said, path included: only this machine can ask", async () => {
    const { server } = await brokenServer(NO_SECURITY);
    const client = grpcClient(server.grpcAddress);
    clients.push(client);
    await rejection(client.register({ hostname: "gpu-1", ipAddress: "10.0.0.1" }));

    const ready = await get(server, "/readyz");

    expect(ready.status).toBe(503);
    expect(ready.body).toContain(server.dataFile);
  });
});
