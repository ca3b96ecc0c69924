// Starts a real server in this process on ephemeral loopback ports with its own temp data directory.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SERVER_DEFAULTS, type ServerConfig, type StoreKind } from "../../src/config/index.js";
import { type ServerDeps, type ServerHandle, startServer } from "../../src/server/server.js";

export interface TestServer extends ServerHandle {
  readonly dataDir: string;
  readonly config: ServerConfig;
  /** Closes the server and removes its data directory. */
  dispose(): Promise<void>;
}

/** The store the integration tests run on: TEST_STORE (set per vitest project), json by default. */
export function testStore(): StoreKind {
  const kind = process.env["TEST_STORE"] ?? "json";
  if (kind !== "json" && kind !== "sqlite") throw new Error(`TEST_STORE must be json or sqlite, got ${JSON.stringify(kind)}`);
  return kind;
}

export async function makeDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "agent-registry-test-"));
}

export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  deps: ServerDeps = {},
): Promise<TestServer> {
  const config: ServerConfig = {
    heartbeatIntervalMs: 30_000,
    agentTimeoutMs: 60_000,
    grpcListen: { host: "127.0.0.1", port: 0 },
    httpListen: { host: "127.0.0.1", port: 0 },
    dataDir: overrides.dataDir ?? (await makeDataDir()),
    ...SERVER_DEFAULTS,
    store: testStore(),
    ...overrides,
  };
  const server = await startServer(config, deps);
  return {
    ...server,
    close: () => server.close(),
    dataDir: config.dataDir,
    config,
    async dispose() {
      await server.close();
      await rm(config.dataDir, { recursive: true, force: true });
    },
  };
}
