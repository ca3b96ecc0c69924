// The real `agent-registry serve` binary as a user runs it (crash safety: test/reliability/crash.test.ts): start-up refusals
// (corrupt file, second server, bad config), the prototype's file, curl over HTTP/1.1, and SIGTERM.

import { execFile } from "node:child_process";
import { readFile, readlink, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, connectClient, grpcClient } from "../support/clients.js";
import { type ServerProcess, runServerToExit, startServerProcess } from "../support/server-process.js";
import type { StoreKind } from "../../src/config/index.js";
import { onDisk, seedPrototypeAgents, storeFile } from "../support/stored-agents.js";
import { makeDataDir, testStore } from "../support/test-server.js";

const run = promisify(execFile);

/** One agent in the prototype's file shape, with `overrides` (which may be wrong on purpose). */
function agentJson(overrides: Record<string, unknown>): string {
  return JSON.stringify({
    id: "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48",
    hostname: "a",
    ip_address: "10.0.0.1",
    port: 11434,
    status: "Online",
    last_heartbeat: "2024-05-01T12:00:00Z",
    registered_at: "2024-05-01T12:00:00Z",
    ...overrides,
  });
}

let dataDir: string;
const running: ServerProcess[] = [];
const clients: RegistryClient[] = [];

async function start(env: Record<string, string> = {}, wrapper: readonly string[] = []): Promise<ServerProcess> {
  const server = await startServerProcess(dataDir, env, [], wrapper);
  running.push(server);
  return server;
}

function client(make: () => RegistryClient): RegistryClient {
  const made = make();
  clients.push(made);
  return made;
}

async function kill9(server: ServerProcess): Promise<void> {
  server.child.kill("SIGKILL");
  await server.exited;
}

beforeEach(async () => {
  dataDir = await makeDataDir();
});

afterEach(async () => {
  for (const made of clients.splice(0)) made.close();
  for (const server of running.splice(0)) {
    if (server.child.exitCode === null && server.child.signalCode === null) await kill9(server);
  }
  await rm(dataDir, { recursive: true, force: true });
});

/** Contents the store's file must never be started on, and what the refusal names; per store. */
const UNUSABLE_FILES: Record<StoreKind, ReadonlyArray<{ what: string; text: string; problem: string }>> = {
  json: [
    { what: "truncated JSON", text: '[{"id": "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48", "hostn', problem: "not valid JSON" },
    { what: "an object instead of an array", text: '{"agents": []}', problem: "expected a JSON array" },
    { what: "a port that is not a number", text: `[${agentJson({ port: "x" })}]`, problem: '"port"' },
    { what: "a duplicate id", text: `[${agentJson({})},${agentJson({ hostname: "b" })}]`, problem: "appears more than once" },
    { what: "an invalid UUID", text: `[${agentJson({ id: "not-a-uuid" })}]`, problem: "must be a UUID" },
    { what: "a status the prototype never wrote", text: `[${agentJson({ status: "Up" })}]`, problem: '"status"' },
    { what: "a time that is not RFC 3339", text: `[${agentJson({ last_heartbeat: "yesterday" })}]`, problem: '"last_heartbeat"' },
  ],
  sqlite: [
    { what: "text that is not a database", text: `[${agentJson({})}]`, problem: "not an SQLite database" },
    { what: "nothing (0 bytes)", text: "", problem: "the file is empty" },
    { what: "SQLite's header and then garbage", text: `SQLite format 3\u0000${"Z".repeat(4080)}`, problem: "database" },
  ],
};

describe("start-up", () => {
  it("serves the prototype's agents (its agents.json, or that file migrated into registry.db) and changes nothing on disk", async () => {
    await seedPrototypeAgents(dataDir);
    const before = await onDisk(dataDir);
    const server = await start();
    const { agents } = await client(() => connectClient(server.httpUrl)).listAgents();
    expect(agents.map((agent) => [agent.hostname, agent.status])).toEqual([
      ["gpu-node-01", AgentStatus.ONLINE],
      ["gpu-node-02", AgentStatus.OFFLINE],
      ["gpu-node-03", AgentStatus.ONLINE],
    ]);
    expect(agents[0]?.lastHeartbeat?.seconds).toBe(BigInt(Date.parse("2024-05-01T12:00:00Z") / 1000));
    expect(await onDisk(dataDir)).toEqual(before);
  });

  it.each(UNUSABLE_FILES[testStore()])("refuses to start on $what, naming the file and the problem, and leaves the file unchanged", async ({ text, problem }) => {
    const file = storeFile(dataDir);
    await writeFile(file, text);
    const before = await stat(file);
    const result = await runServerToExit(dataDir);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toContain(problem);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await readFile(file, "utf8")).toBe(text);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
  });

  it("refuses to start on a 100 MB file of zeros, and leaves it unchanged", async () => {
    const file = storeFile(dataDir);
    await writeFile(file, "");
    await truncate(file, 100 * 1024 * 1024);
    const before = await stat(file);
    const result = await runServerToExit(dataDir);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toContain(testStore() === "json" ? "104857600 bytes" : "not an SQLite database");
    const after = await stat(file);
    expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
  });

  it("refuses to start when its file is a symbolic link, and leaves link and target alone", async () => {
    const target = join(dataDir, "elsewhere");
    await writeFile(target, "[]");
    await symlink(target, storeFile(dataDir));
    const result = await runServerToExit(dataDir);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("symbolic link");
    expect(await readlink(storeFile(dataDir))).toBe(target);
    expect(await readFile(target, "utf8")).toBe("[]");
  });

  it("refuses a second server on the same data directory", async () => {
    const first = await start();
    const second = await runServerToExit(dataDir);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`another agent-registry server (pid ${first.child.pid})`);
    expect(second.stderr).toContain(dataDir);
  });

  it("starts after a kill -9 left its lock behind", async () => {
    await kill9(await start());
    const server = await start();
    expect((await client(() => grpcClient(server.grpcAddress)).listAgents()).agents).toEqual([]);
  });

  it.each<{ env: Record<string, string>; names: string }>([
    { env: { HEARTBEAT_INTERVAL: "abc" }, names: "HEARTBEAT_INTERVAL" },
    { env: { AGENT_TIMEOUT: "-5" }, names: "AGENT_TIMEOUT" },
    { env: { HEARTBEAT_INTERVAL: "30", AGENT_TIMEOUT: "30" }, names: "AGENT_TIMEOUT (30 s) must be greater than HEARTBEAT_INTERVAL" },
    { env: { REGISTRY_GRPC_LISTEN: "50051" }, names: "REGISTRY_GRPC_LISTEN" },
  ])("refuses bad configuration $env with a message naming the variable", async ({ env, names }) => {
    const result = await runServerToExit(dataDir, env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(names);
  });
});

describe("on one CPU", () => {
  // taskset narrows the process to one core, as a container's cpuset does.
  it.runIf(availableParallelism() > 1)("has V8 mark the heap on the main thread and says so; on two CPUs it does not", async () => {
    const one = await start({ LOG_LEVEL: "info" }, ["taskset", "-c", "0"]);
    const otherDir = await makeDataDir();
    try {
      const two = await startServerProcess(otherDir, { LOG_LEVEL: "info" });
      running.push(two);
      // The line is written before the start line, but on stderr, which may be read after stdout.
      await expect.poll(() => one.stderr()).toContain("one CPU: V8 marks the heap on the main thread");
      expect(two.stderr()).not.toContain("one CPU");
      await kill9(two);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});

describe("as a user sees it", () => {
  it("prints one start line with both addresses, the data file, interval and timeout", async () => {
    const server = await start({ HEARTBEAT_INTERVAL: "0.2", AGENT_TIMEOUT: "0.5" });
    expect(server.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(server.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("answers curl over HTTP/1.1 with Connect JSON, by POST and by GET", async () => {
    const server = await start();
    const url = `${server.httpUrl}/registry.v1.AgentRegistry`;
    const registered = await run("curl", [
      "--http1.1", "-sS", "--fail-with-body", "-X", "POST", "-H", "Content-Type: application/json",
      "-d", '{"hostname":"gpu-curl","ipAddress":"10.0.0.9","labels":{"gpu":"a100"}}', `${url}/Register`,
    ]);
    const id = (JSON.parse(registered.stdout) as { agent: { id: string } }).agent.id;
    const posted = await run("curl", [
      "--http1.1", "-sS", "--fail-with-body", "-X", "POST", "-H", "Content-Type: application/json",
      "-d", '{"labelSelector":"gpu=a100"}', `${url}/ListAgents`,
    ]);
    expect(JSON.parse(posted.stdout)).toMatchObject({
      agents: [{ id, hostname: "gpu-curl", ipAddress: "10.0.0.9", status: "AGENT_STATUS_ONLINE", streamConnected: false }],
    });
    const message = encodeURIComponent(JSON.stringify({ status: "AGENT_STATUS_ONLINE" }));
    const got = await run("curl", ["--http1.1", "-sS", "--fail-with-body", `${url}/ListAgents?connect=v1&encoding=json&message=${message}`]);
    expect((JSON.parse(got.stdout) as { agents: unknown[] }).agents).toHaveLength(1);
    const missing = await run("curl", [
      "--http1.1", "-sS", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json",
      "-d", '{"agentId":"3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30"}', `${url}/GetAgent`,
    ]);
    const [body, httpCode] = missing.stdout.split("\n");
    expect(httpCode).toBe("404");
    expect(JSON.parse(body ?? "")).toMatchObject({ code: "not_found", message: expect.stringContaining("3f2b8c1e") });
  });

  it("exits 0 on SIGTERM, ending heartbeat streams with UNAVAILABLE and releasing the data directory", async () => {
    const server = await start();
    const registry = client(() => grpcClient(server.grpcAddress));
    const { agent } = await registry.register({ hostname: "gpu-1" });
    const beat = registry.heartbeat();
    beat.send({ agentId: agent?.id ?? "", seq: 1n });
    await beat.recv();
    server.child.kill("SIGTERM");
    expect((await beat.closed).code).toBe(Code.Unavailable);
    expect(await server.exited).toEqual({ code: 0, signal: null });
    const restarted = await start();
    const got = await client(() => connectClient(restarted.httpUrl)).getAgent(agent?.id ?? "");
    expect(got.agent?.hostname).toBe("gpu-1");
  });
});

