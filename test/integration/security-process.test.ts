// The real `agent-registry serve` binary and its security start-up rules: the token file is read again on
// SIGHUP (a broken one keeps the old tokens), listening beyond loopback with authentication off is refused
// unless explicitly allowed (then warned about at every start), and what it creates on disk is private.

import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RegistryClient, RpcError, connectClient, grpcClient } from "../support/clients.js";
import { type ServerProcess, runServerToExit, startServerProcess } from "../support/server-process.js";
import { storeFile } from "../support/stored-agents.js";
import { makeDataDir } from "../support/test-server.js";

const FIRST = "reader-token-first-00000000001";
const SECOND = "reader-token-second-0000000001";
const AGENT = "agent-token-000000000000000001";

let dataDir: string;
let tokenFile: string;
const running: ServerProcess[] = [];
const clients: RegistryClient[] = [];

beforeEach(async () => {
  dataDir = await makeDataDir();
  tokenFile = join(dataDir, "tokens");
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of running.splice(0)) {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGKILL");
    await server.exited;
  }
  await rm(dataDir, { recursive: true, force: true });
});

async function start(env: Record<string, string>, args: readonly string[] = []): Promise<ServerProcess> {
  const server = await startServerProcess(dataDir, env, args);
  running.push(server);
  return server;
}

async function writeTokens(text: string): Promise<void> {
  await writeFile(tokenFile, text, { mode: 0o600 });
}

/** Resolves once the server's log has a line containing `text`. */
async function logged(server: ServerProcess, text: string, timeoutMs = 5000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = server
      .stderr()
      .split("\n")
      .find((each) => each.includes(text));
    if (line !== undefined) return JSON.parse(line) as Record<string, unknown>;
    if (Date.now() > deadline) {
      const { exitCode, signalCode } = server.child;
      const state = exitCode === null && signalCode === null ? "still running" : `exited (code ${exitCode}, signal ${signalCode})`;
      throw new Error(`no log line with ${JSON.stringify(text)}; the server is ${state}; log: ${server.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The status of a ListAgents call with `token` (0: it worked). */
async function listWith(server: ServerProcess, token: string): Promise<number> {
  const client = connectClient(server.httpUrl, { token });
  clients.push(client);
  return client.listAgents().then(
    () => 0,
    (error: unknown) => (error instanceof RpcError ? error.code : -1),
  );
}

describe("the token file", () => {
  it("is read again on SIGHUP: a token added works and a token removed no longer does", async () => {
    await writeTokens(`# readers\nreader:${FIRST}\n`);
    const server = await start({ REGISTRY_TOKEN_FILE: tokenFile, LOG_LEVEL: "info" });
    expect(await logged(server, "authentication on")).toMatchObject({ tokens: 1 });
    expect(await listWith(server, FIRST)).toBe(0);
    expect(await listWith(server, SECOND)).toBe(Code.Unauthenticated);

    await writeTokens(`reader:${SECOND}   # the new one\n\nagent:${AGENT}\n`);
    server.child.kill("SIGHUP");
    expect(await logged(server, "token file reloaded")).toMatchObject({ msg: "token file reloaded: 2 tokens loaded", tokens: 2 });

    expect(await listWith(server, SECOND)).toBe(0);
    expect(await listWith(server, FIRST)).toBe(Code.Unauthenticated);
    expect(await listWith(server, AGENT)).toBe(Code.PermissionDenied);
    expect(server.child.exitCode).toBeNull();
  });

  it("keeps the tokens in use when the file fails to parse on reload, and logs an error naming the file and line", async () => {
    await writeTokens(`reader:${FIRST}\n`);
    const server = await start({ REGISTRY_TOKEN_FILE: tokenFile });
    await writeTokens(`reader:${SECOND}\n\nwriter:${AGENT}\n`);
    server.child.kill("SIGHUP");
    const line = await logged(server, "previous tokens stay in use");
    expect(line["level"]).toBe(50); // error
    expect(line["msg"]).toContain(`${tokenFile}:3: must be role:token with role agent, reader or admin`);
    expect(JSON.stringify(line)).not.toContain(SECOND);

    expect(await listWith(server, FIRST)).toBe(0);
    expect(await listWith(server, SECOND)).toBe(Code.Unauthenticated);
  });

  it("stops the server at start-up when it cannot be parsed, naming the file and line but never the token", async () => {
    await writeTokens(`reader:${FIRST}\nadmin:short\n`);
    const result = await runServerToExit(dataDir, { REGISTRY_TOKEN_FILE: tokenFile });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `agent-registry: ${tokenFile}:2: the admin token must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (e.g. from \`openssl rand -hex 32\`); got 5 characters\n`,
    );
  });

  it("warns when other users may read it", async () => {
    await writeTokens(`reader:${FIRST}\n`);
    await chmod(tokenFile, 0o644);
    const server = await start({ REGISTRY_TOKEN_FILE: tokenFile });
    expect((await logged(server, "readable by other users"))["level"]).toBe(40);
  });
});

describe("listening beyond loopback", () => {
  it("is refused with authentication off", async () => {
    const result = await runServerToExit(dataDir, { REGISTRY_GRPC_LISTEN: "0.0.0.0:0" });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^agent-registry: refusing to listen on 0\.0\.0\.0:0 \(--grpc-listen\) with authentication off/);
    expect(result.stderr).toContain("--insecure-allow-unauthenticated");
  });

  it("starts with --insecure-allow-unauthenticated, warning in the log at every start", async () => {
    for (let start = 0; start < 2; start++) {
      const server = await startServerProcess(dataDir, { REGISTRY_HTTP_LISTEN: "0.0.0.0:0" }, ["--insecure-allow-unauthenticated"]);
      running.push(server);
      const warning = await logged(server, "with authentication off (--insecure-allow-unauthenticated)");
      expect(warning["level"]).toBe(40);
      // Traffic only to loopback, whatever the listener binds.
      const client = grpcClient(server.grpcAddress);
      clients.push(client);
      await client.register({ hostname: "gpu-01" });
      const port = new URL(server.httpUrl).port;
      const http = connectClient(`http://127.0.0.1:${port}`);
      clients.push(http);
      expect((await http.listAgents()).agents.length).toBe(start + 1);
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });

  it("starts with tokens, warning that they cross the network in plaintext without TLS", async () => {
    const server = await start({ REGISTRY_GRPC_LISTEN: "0.0.0.0:0", REGISTRY_TOKENS: `reader:${FIRST}` });
    expect((await logged(server, "without TLS"))["level"]).toBe(40);
    const port = server.grpcAddress.split(":").at(-1) ?? "";
    const client = grpcClient(`127.0.0.1:${port}`, { token: FIRST });
    clients.push(client);
    expect((await client.listAgents()).agents).toEqual([]);
  });
});

describe("what the server creates on disk", () => {
  it("makes the data directory 0700 and every file of its store 0600, none holding the agent's secret", async () => {
    const nested = join(dataDir, "new", "data");
    await mkdir(join(dataDir, "new"), { mode: 0o755 });
    const server = await startServerProcess(nested);
    running.push(server);
    const client = grpcClient(server.grpcAddress);
    clients.push(client);
    const { agentSecret } = await client.register({ hostname: "gpu-01" });
    expect((await stat(nested)).mode & 0o777).toBe(0o700);
    // agents.json, or registry.db with its -wal and -shm files; and the lock.
    const files = (await readdir(nested)).filter((name) => !name.endsWith(".lock"));
    expect(files).toContain(basename(storeFile(nested)));
    for (const name of files) {
      expect({ name, mode: (await stat(join(nested, name))).mode & 0o777 }).toEqual({ name, mode: 0o600 });
      expect(await readFile(join(nested, name), "latin1")).not.toContain(agentSecret);
    }
  });
});
