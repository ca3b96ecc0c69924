// The node daemon against the real server and a fake Ollama on loopback: it registers and beats, rides out a
// server restart without the node ever showing OFFLINE, comes back after a Deregister, leaves on SIGTERM,
// keeps its id across restarts, and registers as draining while Ollama is down.

import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Agent, AgentStatus, type WatchAgentsResponse } from "../../gen/registry/v1/registry_pb.js";
import type { Log } from "../../src/common/log.js";
import { NodeAgent, type NodeAgentOptions } from "../../src/agent/node-agent.js";
import { type AgentProcess, runAgentToExit, startAgentProcess } from "../support/agent-process.js";
import { type RegistryClient, type WatchStream, grpcClient } from "../support/clients.js";
import { type FakeOllama, freePort, startFakeOllama } from "../support/fake-ollama.js";
import { type TestServer, makeDataDir, startTestServer } from "../support/test-server.js";

const FAST = { heartbeatIntervalMs: 200, agentTimeoutMs: 1000 };

interface Logged {
  readonly level: string;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

let stateDir: string;
let ollama: FakeOllama | undefined;
const servers: TestServer[] = [];
const agents: NodeAgent[] = [];
const processes: AgentProcess[] = [];
const clients: RegistryClient[] = [];
const watches: WatchStream[] = [];

beforeEach(async () => {
  stateDir = await makeDataDir();
  ollama = await startFakeOllama({ version: "0.5.7" });
});

afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.stop();
  for (const child of processes.splice(0)) {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGKILL");
    await child.exited;
  }
  for (const watch of watches.splice(0)) watch.cancel();
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.dispose();
  await ollama?.close();
  ollama = undefined;
  await rm(stateDir, { recursive: true, force: true });
});

async function server(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const started = await startTestServer({ ...FAST, ...overrides });
  servers.push(started);
  return started;
}

function client(of: TestServer): RegistryClient {
  const made = grpcClient(of.grpcAddress);
  clients.push(made);
  return made;
}

function daemon(registry: TestServer, options: Partial<NodeAgentOptions> = {}): { agent: NodeAgent; log: Logged[] } {
  const log: Logged[] = [];
  const at = (level: string) => (fields: object, message: string) =>
    log.push({ level, message, fields: fields as Record<string, unknown> });
  const memoryLog: Log = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  const agent = new NodeAgent(
    {
      registryAddress: registry.grpcAddress,
      ollamaUrl: ollama?.url ?? "http://127.0.0.1:1",
      stateFile: join(stateDir, "agent-state.json"),
      node: { hostname: "gpu-01", ipAddress: "", port: ollama?.port ?? 11434, labels: { gpu: "a100", zone: "eu" } },
      ...options,
    },
    // Short backoff windows: the behaviour is the same, the tests are faster.
    { log: memoryLog, backoff: { baseMs: 50, capMs: 200 } },
  );
  agents.push(agent);
  return { agent, log };
}

/** The agent as the registry shows it, once `check` holds (polled). */
async function eventually(registry: RegistryClient, agentId: string, check: (agent: Agent) => boolean): Promise<Agent> {
  let seen: Agent | undefined;
  await expect
    .poll(
      async () => {
        seen = await registry.getAgent(agentId).then(
          (response) => response.agent,
          () => undefined,
        );
        return seen !== undefined && check(seen);
      },
      { timeout: 5000, interval: 20 },
    )
    .toBe(true);
  return seen as Agent;
}

const connected = (agent: Agent): boolean => agent.status === AgentStatus.ONLINE && agent.streamConnected;

/** Reads a watch in the background until it ends; returns the events seen so far at any time. */
function record(watch: WatchStream): WatchAgentsResponse[] {
  watches.push(watch);
  const events: WatchAgentsResponse[] = [];
  void (async () => {
    for (;;) events.push(await watch.recv());
  })().catch(() => undefined /* the watch ended: the server closed, or the test cancelled it */);
  return events;
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("the node daemon", () => {
  it("registers with its host name, labels and Ollama's version, and holds a beating stream", async () => {
    const registry = await server();
    const { agent, log } = daemon(registry);
    const agentId = await agent.start();

    const shown = await eventually(client(registry), agentId, connected);

    expect(shown).toMatchObject({
      id: agentId,
      hostname: "gpu-01",
      ipAddress: "127.0.0.1", // ip_address left empty: the server used the daemon's address
      port: ollama?.port,
      ollamaVersion: "0.5.7",
      labels: { gpu: "a100", zone: "eu" },
      draining: false,
    });
    expect(log.find((line) => line.message === "registered")?.fields).toMatchObject({ agentId, ollamaVersion: "0.5.7" });

    // It keeps beating (last_heartbeat moves on, nothing is missed) and logs nothing per beat at info level.
    const infoLines = log.filter((line) => line.level !== "debug").length;
    const before = shown.lastHeartbeat?.nanos ?? 0;
    await wait(3 * FAST.heartbeatIntervalMs);
    const later = await eventually(client(registry), agentId, connected);
    expect(later.lastHeartbeat?.nanos).not.toBe(before);
    expect(later.missedHeartbeats).toBe(0);
    expect(log.filter((line) => line.level !== "debug")).toHaveLength(infoLines);
  });

  it("survives a server restart on the same port and data directory without the node ever showing OFFLINE", async () => {
    const first = await server();
    const { agent, log } = daemon(first);
    const agentId = await agent.start();
    await eventually(client(first), agentId, connected);
    const beforeRestart = record(client(first).watch());

    await first.close();
    const port = Number(first.grpcAddress.split(":").at(-1));
    const second = await server({ dataDir: first.dataDir, grpcListen: { host: "127.0.0.1", port } });
    const afterRestart = record(client(second).watch());
    await eventually(client(second), agentId, connected);
    // Past the restored node's grace (one AGENT_TIMEOUT from start-up): only its beats keep it online now.
    await wait(FAST.agentTimeoutMs + 2 * FAST.heartbeatIntervalMs);

    expect((await client(second).getAgent(agentId)).agent).toMatchObject({ status: AgentStatus.ONLINE, streamConnected: true });
    const seen = [...beforeRestart, ...afterRestart];
    expect(afterRestart.length).toBeGreaterThan(0);
    expect(seen.filter((event) => event.agent?.status !== AgentStatus.ONLINE)).toEqual([]);
    expect(log.find((line) => line.message === "heartbeat stream lost; reconnecting with backoff")?.fields).toMatchObject({
      code: "UNAVAILABLE",
    });
    expect(log.some((line) => line.message === "heartbeat stream reconnected")).toBe(true);
    // It went straight back to its stream: the restarted server still knew it.
    expect(log.filter((line) => line.message === "registered")).toHaveLength(1);
  });

  it("registers again with the same id after a Deregister", async () => {
    const registry = await server();
    const { agent, log } = daemon(registry);
    const agentId = await agent.start();
    const operator = client(registry);
    const first = await eventually(operator, agentId, connected);

    await operator.deregister(agentId);

    const back = await eventually(operator, agentId, connected);
    expect(back.id).toBe(agentId);
    expect(back.registeredAt?.nanos !== first.registeredAt?.nanos || back.registeredAt?.seconds !== first.registeredAt?.seconds).toBe(true);
    expect(log.find((line) => line.message.startsWith("the registry does not know this agent"))?.fields).toMatchObject({
      code: "NOT_FOUND",
    });
    expect(log.filter((line) => line.message === "registered")).toHaveLength(2);
  });

  it("keeps its id across a restart of the daemon", async () => {
    const registry = await server();
    const first = daemon(registry).agent;
    const agentId = await first.start();
    await eventually(client(registry), agentId, connected);
    await first.stop();

    const second = daemon(registry).agent;
    expect(await second.start()).toBe(agentId);

    await eventually(client(registry), agentId, connected);
    expect((await client(registry).listAgents()).agents.map((agent) => agent.id)).toEqual([agentId]);
  });

  it("registers as draining while Ollama is down, and undrains with its version once Ollama answers", async () => {
    const registry = await server();
    await ollama?.close();
    const port = await freePort();
    ollama = undefined;
    const { agent, log } = daemon(registry, {
      ollamaUrl: `http://127.0.0.1:${port}`,
      node: { hostname: "gpu-01", ipAddress: "", port, labels: {} },
    });
    const agentId = await agent.start();
    const operator = client(registry);

    const waiting = await eventually(operator, agentId, (shown) => connected(shown) && shown.draining);
    expect(waiting.ollamaVersion).toBe("");
    ollama = await startFakeOllama({ port, version: "0.6.0" });

    const ready = await eventually(operator, agentId, (shown) => connected(shown) && !shown.draining);
    expect(ready.ollamaVersion).toBe("0.6.0");
    const ollamaLines = log.filter((line) => line.message.startsWith("ollama"));
    expect(ollamaLines.map((line) => line.message)).toEqual([
      "ollama is unreachable; the node stays registered as draining and retries every heartbeat interval",
      "ollama is back",
    ]);
    expect(ollamaLines[0]?.fields["reason"]).toContain("ECONNREFUSED");
  });

  it("drains when Ollama goes away, keeping the version it last saw", async () => {
    const registry = await server();
    const { agent } = daemon(registry);
    const agentId = await agent.start();
    const operator = client(registry);
    await eventually(operator, agentId, (shown) => connected(shown) && !shown.draining);

    await ollama?.close();
    ollama = undefined;

    const drained = await eventually(operator, agentId, (shown) => shown.draining);
    expect(drained).toMatchObject({ status: AgentStatus.ONLINE, ollamaVersion: "0.5.7" });
  });
});

describe("agent-registry agent (the real binary)", () => {
  async function run(registry: TestServer, args: readonly string[] = []): Promise<AgentProcess> {
    const started = await startAgentProcess(
      ["--hostname", "gpu-cli", "--label", "gpu=a100", "--label", "zone=eu", ...args],
      { REGISTRY_ADDR: registry.grpcAddress, OLLAMA_URL: ollama?.url ?? "", REGISTRY_DATA_DIR: stateDir },
    );
    processes.push(started);
    return started;
  }

  it("leaves on SIGTERM: the node is OFFLINE at once and the daemon exits 0", async () => {
    // A long timeout: only `leaving` can make the node OFFLINE within this test.
    const registry = await server({ heartbeatIntervalMs: 200, agentTimeoutMs: 60_000 });
    const daemonProcess = await run(registry);
    const operator = client(registry);
    const shown = await eventually(operator, daemonProcess.agentId, connected);
    expect(shown).toMatchObject({ hostname: "gpu-cli", labels: { gpu: "a100", zone: "eu" }, ollamaVersion: "0.5.7" });

    daemonProcess.child.kill("SIGTERM");
    const exit = await daemonProcess.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect((await operator.getAgent(daemonProcess.agentId)).agent?.status).toBe(AgentStatus.OFFLINE);
    // The stream's end is committed after the server has answered it (nobody waits for a presence change),
    // so it may reach readers a few milliseconds after the daemon is gone.
    await expect.poll(async () => (await operator.getAgent(daemonProcess.agentId)).agent?.streamConnected, { timeout: 1000, interval: 20 }).toBe(false);
    const lines = daemonProcess.stderr().trim().split("\n").map((line) => JSON.parse(line) as { msg: string; agentId?: string });
    expect(lines.find((line) => line.msg === "registered")?.agentId).toBe(daemonProcess.agentId);
    expect(lines.at(-1)?.msg).toBe("left the registry: marked offline");
  });

  it("comes back as the same node after a restart, from its 0600 state file", async () => {
    const registry = await server();
    const first = await run(registry);
    await eventually(client(registry), first.agentId, connected);
    first.child.kill("SIGTERM");
    await first.exited;

    const second = await run(registry);

    expect(second.agentId).toBe(first.agentId);
    const file = join(stateDir, "agent-state.json");
    // The id and the secret its first Register returned (the registry keeps only the secret's hash).
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ agent_id: first.agentId, agent_secret: expect.stringMatching(/^[\w-]{43}$/) });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await eventually(client(registry), second.agentId, connected);
  });

  it("refuses a corrupt state file, naming it, and leaves it as it was", async () => {
    const file = join(stateDir, "agent-state.json");
    await writeFile(file, '{"agent_id": ');

    const result = await runAgentToExit([], { REGISTRY_DATA_DIR: stateDir });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`agent state file ${file} is not valid JSON`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await readFile(file, "utf8")).toBe('{"agent_id": ');
  });

  it("refuses a bad --label with a message naming the flag", async () => {
    const result = await runAgentToExit(["--label", "gpu"], { REGISTRY_DATA_DIR: stateDir });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--label must be key=value, e.g. --label gpu=a100, got "gpu"');
  });
});
