// What an operator relies on, each through a real client: grpc.health.v1.Health on the gRPC port and
// /healthz, /readyz on the HTTP port; Prometheus /metrics; structured JSON logs of the serve process;
// graceful shutdown on SIGTERM.

import { rm } from "node:fs/promises";
import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type BeatStream, type RegistryClient, RpcError, type WatchStream, connectClient, grpcClient, rejection } from "../support/clients.js";
import { type HealthClient, healthClient } from "../support/health-client.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { type BreakableServer, canBreakStore, startBreakableServer } from "../support/store-trouble.js";
import { storedAgent, storedAgents } from "../support/stored-agents.js";
import { type TestServer, makeDataDir, startTestServer } from "../support/test-server.js";

const REGISTRY_SERVICE = "registry.v1.AgentRegistry";

/** Everything a test opened, closed after it whatever happened. */
const opened: Array<{ close(): void }> = [];
const servers: TestServer[] = [];
const processes: ServerProcess[] = [];
const dataDirs: string[] = [];
const breakables: BreakableServer[] = [];

function track<T extends { close(): void }>(made: T): T {
  opened.push(made);
  return made;
}

async function server(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const started = await startTestServer(overrides);
  servers.push(started);
  return started;
}

async function serverProcess(env: Record<string, string> = {}): Promise<{ server: ServerProcess; dataDir: string }> {
  const dataDir = await makeDataDir();
  dataDirs.push(dataDir);
  const started = await startServerProcess(dataDir, env);
  processes.push(started);
  return { server: started, dataDir };
}

afterEach(async () => {
  for (const made of opened.splice(0)) made.close();
  for (const started of servers.splice(0)) await started.dispose();
  for (const started of breakables.splice(0)) await started.dispose();
  for (const started of processes.splice(0)) {
    if (started.child.exitCode === null && started.child.signalCode === null) {
      started.child.kill("SIGKILL");
      await started.exited;
    }
  }
  for (const dir of dataDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Reads watch events until the stream ends, and returns how it ended. */
async function watchEnd(watch: WatchStream): Promise<RpcError> {
  for (;;) {
    try {
      await watch.recv();
    } catch (error) {
      if (error instanceof RpcError) return error;
      throw error;
    }
  }
}

async function probe(httpUrl: string, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${httpUrl}${path}`);
  return { status: response.status, body: await response.text() };
}

/** One sample of the Prometheus text exposition format. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const SPECIAL_VALUES: Record<string, number> = { "+Inf": Infinity, "-Inf": -Infinity, NaN: NaN };

function parsePrometheusText(text: string): Sample[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => {
      const match = SAMPLE_LINE.exec(line);
      if (match === null) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? "").matchAll(LABEL)].map(([, key, value]) => [key, (value ?? "").replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))]),
      );
      const raw = match[3] ?? "";
      return { name: match[1] ?? "", labels, value: SPECIAL_VALUES[raw] ?? Number(raw) };
    });
}

/** The sum of the samples named `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  return matching.length === 0 ? undefined : matching.reduce((sum, sample) => sum + sample.value, 0);
}

async function scrape(httpUrl: string): Promise<Sample[]> {
  const response = await fetch(`${httpUrl}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

describe("grpc.health.v1.Health on the gRPC port, /healthz and /readyz on the HTTP port", () => {
  let registry: TestServer;
  let client: RegistryClient;
  let health: HealthClient;

  beforeEach(async () => {
    registry = await server();
    client = track(grpcClient(registry.grpcAddress));
    health = track(healthClient(registry.grpcAddress));
  });

  it("answers SERVING for the whole server and for the registry service, and both probes 200", async () => {
    expect(await health.check("")).toBe("SERVING");
    expect(await health.check(REGISTRY_SERVICE)).toBe("SERVING");
    const watch = health.watch(REGISTRY_SERVICE);
    opened.push({ close: () => watch.cancel() });
    await expect.poll(() => watch.statuses).toEqual(["SERVING"]);
    expect(await probe(registry.httpUrl, "/healthz")).toEqual({ status: 200, body: "ok\n" });
    expect(await probe(registry.httpUrl, "/readyz")).toEqual({ status: 200, body: "ok\n" });
  });

  it("answers NOT_FOUND to Check and SERVICE_UNKNOWN to Watch for a service it does not serve", async () => {
    expect((await rejection(health.check("no.such.Service"))).code).toBe(Code.NotFound);
    const watch = health.watch("no.such.Service");
    opened.push({ close: () => watch.cancel() });
    await expect.poll(() => watch.statuses).toEqual(["SERVICE_UNKNOWN"]);
  });

  it.runIf(canBreakStore)("reports NOT_SERVING while the store cannot write, and SERVING again once it can", async () => {
    const breakable = await startBreakableServer();
    breakables.push(breakable);
    const registry = breakable.server;
    const client = track(grpcClient(registry.grpcAddress));
    const health = track(healthClient(registry.grpcAddress));
    await client.register({ hostname: "gpu-1", ipAddress: "10.0.0.1" });
    const watch = health.watch(REGISTRY_SERVICE);
    opened.push({ close: () => watch.cancel() });
    await expect.poll(() => watch.statuses).toEqual(["SERVING"]);

    const broken = await breakable.breakWrites();
    // Nodes register with their own stable id, so retrying a refused registration is idempotent.
    const gpu2 = { agentId: "22222222-2222-4222-8222-222222222222", hostname: "gpu-2", ipAddress: "10.0.0.2" };
    const refused = await rejection(client.register(gpu2));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.message).toContain(registry.dataFile);
    expect(refused.message).toMatch(broken.problem);
    await expect.poll(() => watch.statuses).toEqual(["SERVING", "NOT_SERVING"]);
    expect(await health.check("")).toBe("NOT_SERVING");
    const notReady = await probe(registry.httpUrl, "/readyz");
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain("the store cannot write");
    expect(notReady.body).toContain(registry.dataFile);
    expect((await probe(registry.httpUrl, "/healthz")).status).toBe(200); // alive, only not ready
    expect(valueOf(await scrape(registry.httpUrl), "agent_registry_store_writes_total", { result: "error" })).toBeGreaterThanOrEqual(1);

    await broken.fix();
    await client.register(gpu2);
    await client.register({ hostname: "gpu-3", ipAddress: "10.0.0.3" });
    // One message per change of status, not one per write (the Health protocol's rule).
    await expect.poll(() => watch.statuses).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
    expect(await health.check(REGISTRY_SERVICE)).toBe("SERVING");
    expect(await probe(registry.httpUrl, "/readyz")).toEqual({ status: 200, body: "ok\n" });
    expect((await storedAgents(registry.dataDir)).map((agent) => agent.hostname).sort()).toEqual(["gpu-1", "gpu-2", "gpu-3"]);
  });

  it("reports NOT_SERVING as soon as shutdown begins, refuses new RPCs, and closes promptly", async () => {
    const http = track(connectClient(registry.httpUrl));
    await http.listAgents(); // an open HTTP/2 connection, as a long-lived caller has
    const watch = health.watch("");
    opened.push({ close: () => watch.cancel() });
    await expect.poll(() => watch.statuses).toEqual(["SERVING"]);

    const started = performance.now();
    const closing = registry.close();
    // The watcher hears NOT_SERVING, then the stream ends rather than holding shutdown open.
    await expect.poll(() => [watch.statuses, watch.ended?.code]).toEqual([["SERVING", "NOT_SERVING"], Code.Unavailable]);
    expect((await rejection(client.listAgents())).code).toBe(Code.Unavailable);
    expect((await rejection(http.listAgents())).code).toBe(Code.Unavailable);
    await closing;
    // Nothing in flight: an open health watch must not hold shutdown for the whole grace period.
    expect(performance.now() - started).toBeLessThan(1500);
  });
});

describe("/metrics in the Prometheus text format", () => {
  it("moves with a scenario: registrations, beats, a bad request, a silent agent going offline, store writes", async () => {
    const registry = await server({ heartbeatIntervalMs: 200, agentTimeoutMs: 500 });
    const grpc = track(grpcClient(registry.grpcAddress));
    const http = track(connectClient(registry.httpUrl));
    const metric = async (name: string, labels: Record<string, string> = {}) => valueOf(await scrape(registry.httpUrl), name, labels);

    expect(await metric("agent_registry_agents", { status: "online" })).toBe(0);
    const steady = (await grpc.register({ hostname: "gpu-steady", ipAddress: "10.0.0.1" })).agent?.id ?? "";
    const beat: BeatStream = grpc.heartbeat();
    opened.push({ close: () => beat.cancel() });
    beat.send({ agentId: steady, seq: 1n });
    await beat.recv();
    await http.register({ hostname: "gpu-silent", ipAddress: "10.0.0.2" });

    let samples = await scrape(registry.httpUrl);
    expect(valueOf(samples, "agent_registry_agents", { status: "online" })).toBe(2);
    expect(valueOf(samples, "agent_registry_rpcs_total", { method: "Register", listener: "grpc", code: "OK" })).toBe(1);
    expect(valueOf(samples, "agent_registry_rpcs_total", { method: "Register", listener: "http", code: "OK" })).toBe(1);
    expect(valueOf(samples, "agent_registry_rpc_duration_seconds_count", { method: "Register" })).toBe(2);
    expect(valueOf(samples, "agent_registry_heartbeat_streams")).toBe(1);
    const beatsBefore = valueOf(samples, "agent_registry_heartbeats_total") ?? 0;
    expect(beatsBefore).toBeGreaterThanOrEqual(1);

    // The steady agent keeps beating (well within its 0.5 s timeout); the other one stays silent.
    let seq = 1n;
    const beating = setInterval(() => beat.send({ seq: ++seq }), 100);
    opened.push({ close: () => clearInterval(beating) });

    expect((await rejection(grpc.register({ hostname: "", ipAddress: "10.0.0.3" }))).code).toBe(Code.InvalidArgument);
    expect(await metric("agent_registry_rpcs_total", { method: "Register", listener: "grpc", code: "INVALID_ARGUMENT" })).toBe(1);

    await expect
      .poll(() => metric("agent_registry_liveness_transitions_total", { from: "online", to: "offline", reason: "timeout" }), {
        timeout: 3000,
      })
      .toBe(1);
    samples = await scrape(registry.httpUrl);
    expect(valueOf(samples, "agent_registry_heartbeats_total")).toBeGreaterThan(beatsBefore);
    expect(valueOf(samples, "agent_registry_heartbeat_streams")).toBe(1);
    expect(valueOf(samples, "agent_registry_agents", { status: "online" })).toBe(1);
    expect(valueOf(samples, "agent_registry_agents", { status: "offline" })).toBe(1);
    expect(valueOf(samples, "agent_registry_liveness_transitions_total", { from: "absent", to: "online", reason: "registered" })).toBe(2);
    expect(valueOf(samples, "agent_registry_offline_lateness_seconds_count")).toBe(1);
    expect(valueOf(samples, "agent_registry_offline_lateness_seconds_sum")).toBeLessThan(1);
    expect(valueOf(samples, "agent_registry_store_writes_total", { result: "ok" })).toBeGreaterThan(0);
    expect(valueOf(samples, "agent_registry_store_writes_total", { result: "error" }) ?? 0).toBe(0);
    expect(valueOf(samples, "agent_registry_store_write_duration_seconds_count")).toBeGreaterThan(0);
    expect(valueOf(samples, "agent_registry_store_file_bytes")).toBeGreaterThan(0);
    expect(valueOf(samples, "nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);

    clearInterval(beating);
    beat.end();
    expect((await beat.closed).code).toBe(0);
    await expect.poll(() => metric("agent_registry_heartbeat_streams")).toBe(0);
    expect(await metric("agent_registry_rpcs_total", { method: "Heartbeat", listener: "grpc", code: "OK" })).toBe(1);
  });
});

interface LogLine {
  readonly level: number;
  readonly time: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** Every stderr line of the process, each of which must be one JSON object with level, time and msg. */
function logLines(server: ServerProcess): LogLine[] {
  return server
    .stderr()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const parsed = JSON.parse(line) as LogLine;
      expect(parsed, line).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
      return parsed;
    });
}

describe("structured JSON logs of agent-registry serve", () => {
  it("logs each state change of an agent once, as one JSON line, and nothing per beat", async () => {
    const { server: serve } = await serverProcess({ LOG_LEVEL: "info", HEARTBEAT_INTERVAL: "0.2", AGENT_TIMEOUT: "0.5" });
    const client = track(grpcClient(serve.grpcAddress));
    const agentId = (await client.register({ hostname: "gpu-log", ipAddress: "10.0.0.1" })).agent?.id ?? "";

    const first = client.heartbeat();
    for (let seq = 1n; seq <= 20n; seq++) {
      first.send({ agentId: seq === 1n ? agentId : "", seq });
      expect((await first.recv()).seq).toBe(seq);
    }
    const second = client.heartbeat();
    second.send({ agentId, seq: 21n });
    await second.recv();
    expect((await first.closed).code).toBe(Code.Aborted);
    second.end();
    await second.closed;

    const messages = () => logLines(serve).filter((line) => line["agentId"] === agentId).map((line) => line.msg);
    await expect.poll(messages, { timeout: 3000 }).toContain("agent offline: no heartbeat for 0.5 s");
    await client.deregister(agentId);
    await expect.poll(messages).toContain("agent deregistered");

    expect(messages()).toEqual([
      "agent registered",
      "heartbeat stream superseded by a newer one",
      "agent offline: no heartbeat for 0.5 s",
      "agent deregistered",
    ]);
    const lines = logLines(serve);
    expect(lines.find((line) => line.msg.startsWith("agent offline"))).toMatchObject({ level: 30, agentId, hostname: "gpu-log", reason: "timeout" });
    expect(lines.find((line) => line.msg === "agent registered")).toMatchObject({ level: 30, hostname: "gpu-log", address: "10.0.0.1:11434" });
    // 21 beats, and not one line about them at info level.
    expect(lines.length).toBeLessThan(10);
  });
});

describe("graceful shutdown of agent-registry serve on SIGTERM", () => {
  it("goes NOT_SERVING, ends streams on both ports with UNAVAILABLE, refuses new calls, writes the last state, exits 0", async () => {
    const { server: serve, dataDir } = await serverProcess({ LOG_LEVEL: "info" });
    const client = track(grpcClient(serve.grpcAddress));
    const watcher = track(grpcClient(serve.grpcAddress));
    const health = track(healthClient(serve.grpcAddress));
    const agentId = (await client.register({ hostname: "gpu-1", ipAddress: "10.0.0.1" })).agent?.id ?? "";
    const watch = watcher.watch();
    await watch.recv(); // the snapshot
    const httpWatch = track(connectClient(serve.httpUrl)).watch();
    await httpWatch.recv();
    const healthWatch = health.watch(REGISTRY_SERVICE);
    await expect.poll(() => healthWatch.statuses).toEqual(["SERVING"]);

    const beat = client.heartbeat();
    beat.send({ agentId, seq: 1n });
    await beat.recv();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Beat times are saved lazily (once a heartbeat interval, 30 s here), so this one is not on disk yet:
    // only the last save at shutdown can put it there.
    beat.send({ seq: 2n });
    const lastBeat = timestampMs((await beat.recv()).serverTime as Timestamp);
    const lastBeatOnDisk = async (): Promise<number | undefined> => (await storedAgent(dataDir, agentId))?.lastHeartbeat;
    expect(await lastBeatOnDisk()).toBeLessThan(lastBeat);

    const signalled = performance.now();
    serve.child.kill("SIGTERM");
    expect((await beat.closed).code).toBe(Code.Unavailable);
    expect((await watchEnd(watch)).code).toBe(Code.Unavailable);
    expect((await watchEnd(httpWatch)).code).toBe(Code.Unavailable);
    await expect.poll(() => [healthWatch.statuses, healthWatch.ended?.code]).toEqual([["SERVING", "NOT_SERVING"], Code.Unavailable]);
    expect((await rejection(client.listAgents())).code).toBe(Code.Unavailable);

    // Exit code 0 also says no handle was left open (serve exits 1 naming them otherwise).
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalled).toBeLessThan(5000);
    expect(await lastBeatOnDisk()).toBe(lastBeat);
    const messages = logLines(serve).map((line) => line.msg);
    expect(messages).toEqual(expect.arrayContaining(["shutting down", "stopped"]));
    expect(messages).not.toContain("handles left open after shutdown");
  });
});
