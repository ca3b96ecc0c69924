// The client commands as an operator runs them: the built `agent-registry list|get|deregister|watch` as a
// child process against a real in-process server, checked by stdout, stderr and exit code.

import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { toJson } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentStatus, ListAgentsResponseSchema } from "../../gen/registry/v1/registry_pb.js";
import { type CliProcess, runCli, startCli } from "../support/cli-process.js";
import { type RegistryClient, connectClient } from "../support/clients.js";
import { CLI, type RunResult } from "../support/server-process.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const UNKNOWN_ID = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";

let server: TestServer;
let client: RegistryClient;
const watches: CliProcess[] = [];

beforeEach(async () => {
  server = await startTestServer();
  client = connectClient(server.httpUrl);
});

afterEach(async () => {
  for (const watch of watches.splice(0)) {
    if (watch.child.exitCode === null && watch.child.signalCode === null) watch.child.kill("SIGKILL");
    await watch.exited;
  }
  client.close();
  await server.dispose();
});

/** Runs a client command against the test server. */
const cli = (...args: string[]): Promise<RunResult> => runCli([...args, "--url", server.httpUrl]);

function watch(...args: string[]): CliProcess {
  const started = startCli(["watch", ...args, "--url", server.httpUrl]);
  watches.push(started);
  return started;
}

async function register(hostname: string, labels: Record<string, string> = {}): Promise<string> {
  const { agent } = await client.register({ hostname, ipAddress: "10.0.0.1", ollamaVersion: "0.5.7", labels });
  return agent?.id ?? "";
}

/** Marks an agent OFFLINE at once, as a node shutting down does. */
async function leave(agentId: string): Promise<void> {
  const beat = client.heartbeat();
  beat.send({ agentId, seq: 1n, leaving: true });
  expect((await beat.recv()).status).toBe(AgentStatus.OFFLINE);
  beat.end();
  await beat.closed;
}

/** A failure as the user sees it: a non-zero exit and exactly one line on stderr. */
function expectOneLineFailure(result: RunResult): string {
  expect(result.code).not.toBe(0);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^agent-registry: /);
  return lines[0] ?? "";
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise<void>((resolve, reject) => probe.close((error) => (error === undefined ? resolve() : reject(error))));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** The hostname column of a list table, header excluded. */
const hostnames = (table: string): string[] =>
  table
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((line) => line.split(/\s+/)[0] ?? "");

describe("list", () => {
  it("prints a table of the agents sorted by hostname, with status, age and labels", async () => {
    await register("gpu-02");
    const id = await register("gpu-01", { zone: "eu", gpu: "a100" });
    await register("cpu-01");
    const result = await cli("list");
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const [header, ...rows] = result.stdout.trimEnd().split("\n");
    expect(header?.split(/ {3,}/)).toEqual(["HOSTNAME", "ID", "ADDRESS", "VERSION", "STATUS", "LAST BEAT", "GPUS", "MODELS", "LABELS"]);
    expect(hostnames(result.stdout)).toEqual(["cpu-01", "gpu-01", "gpu-02"]);
    expect(rows[1]?.split(/ {3,}/)).toEqual(["gpu-01", id, "10.0.0.1:11434", "0.5.7", "ONLINE", expect.stringMatching(/^\d+s ago$/), "-", "-", "gpu=a100,zone=eu"]);
  });

  it("prints the agents as one ListAgentsResponse in protobuf JSON with --json, as the server's JSON has them", async () => {
    await register("gpu-02");
    await register("gpu-01", { gpu: "a100" });
    const result = await cli("list", "--json");
    expect(result.code).toBe(0);
    const expected = toJson(ListAgentsResponseSchema, await client.listAgents(), { alwaysEmitImplicit: true });
    expect(JSON.parse(result.stdout)).toEqual(expected);
    expect(JSON.parse(result.stdout)).toMatchObject({ agents: [{ hostname: "gpu-01", labels: { gpu: "a100" }, status: "AGENT_STATUS_ONLINE" }, { hostname: "gpu-02" }] });
  });

  it("prints an empty agents array with --json when nothing is registered", async () => {
    const result = await cli("list", "--json");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ agents: [], nextPageToken: "" });
  });

  it("says so on stderr and exits 0 when nothing is registered", async () => {
    expect(await cli("list")).toEqual({ code: 0, stdout: "", stderr: "no agents registered\n" });
  });

  it("filters by --status", async () => {
    await register("gpu-01");
    await leave(await register("gpu-02"));
    expect(hostnames((await cli("list", "--status", "offline")).stdout)).toEqual(["gpu-02"]);
    expect(hostnames((await cli("list", "--status", "online")).stdout)).toEqual(["gpu-01"]);
  });

  it("filters by --selector, every pair matching", async () => {
    await register("gpu-01", { gpu: "a100", zone: "eu" });
    await register("gpu-02", { gpu: "a100", zone: "us" });
    await register("gpu-03", { gpu: "h100", zone: "eu" });
    expect(hostnames((await cli("list", "--selector", "gpu=a100")).stdout)).toEqual(["gpu-01", "gpu-02"]);
    expect(hostnames((await cli("list", "--selector", "gpu=a100,zone=eu")).stdout)).toEqual(["gpu-01"]);
    expect(await cli("list", "--selector", "gpu=v100")).toEqual({ code: 0, stdout: "", stderr: "no agents match\n" });
  });

  it("refuses a malformed --selector in one line naming label_selector", async () => {
    expect(expectOneLineFailure(await cli("list", "--selector", "gpu"))).toContain("label_selector");
  });

  it("pages through a fleet bigger than one page, each agent once, in order", async () => {
    const count = 1_001; // three pages of 500
    await Promise.all(Array.from({ length: count }, (_, i) => register(`gpu-${String(i).padStart(4, "0")}`)));
    const result = await cli("list", "--json");
    const listed = (JSON.parse(result.stdout) as { agents: Array<{ hostname: string }> }).agents.map((agent) => agent.hostname);
    expect(listed).toHaveLength(count);
    expect(listed).toEqual([...listed].sort());
    expect(new Set(listed).size).toBe(count);
    expect(hostnames((await cli("list")).stdout)).toEqual(listed);
  });
  it("stops quietly, exit 0, when its reader goes away (list | head -1)", async () => {
    await Promise.all(Array.from({ length: 800 }, (_, i) => register(`gpu-${String(i).padStart(4, "0")}`, { zone: "eu-west" })));
    const script = `"${process.execPath}" "${CLI}" list --url ${server.httpUrl} | head -1; exit \${PIPESTATUS[0]}`;
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile("bash", ["-c", script], { timeout: 10_000 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr }),
      ),
    );
    expect(result).toEqual({ code: 0, stdout: expect.stringMatching(/^HOSTNAME +ID/), stderr: "" });
  });
});

describe("get", () => {
  it("shows one agent in detail", async () => {
    const id = await register("gpu-01", { gpu: "a100" });
    const result = await cli("get", id);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toMatch(new RegExp(`^ID: +${id}\n`));
    expect(result.stdout).toMatch(/\nHostname: +gpu-01\n/);
    expect(result.stdout).toMatch(/\nStatus: +ONLINE\n/);
    expect(result.stdout).toMatch(/\nLast beat: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s ago\)\n/);
    expect(result.stdout).toMatch(/\nLabels: +gpu=a100\n/);
  });

  it("prints the GetAgentResponse in protobuf JSON with --json", async () => {
    const id = await register("gpu-01");
    const result = await cli("get", id, "--json");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ agent: { id, hostname: "gpu-01", status: "AGENT_STATUS_ONLINE", port: 11434 } });
  });

  it("fails in one line saying there is no agent with an unknown id", async () => {
    const line = expectOneLineFailure(await cli("get", UNKNOWN_ID));
    expect(line).toContain(`no agent with id ${UNKNOWN_ID}`);
  });

  it("fails in one line naming agent_id for an id that is not a UUID", async () => {
    expect(expectOneLineFailure(await cli("get", "gpu-01"))).toMatch(/^agent-registry: agent_id: must be a UUID/);
  });
});

describe("deregister", () => {
  it("removes the agent", async () => {
    const id = await register("gpu-01");
    expect(await cli("deregister", id)).toEqual({ code: 0, stdout: `deregistered ${id}\n`, stderr: "" });
    await expect(client.getAgent(id)).rejects.toMatchObject({ code: Code.NotFound });
    expect(expectOneLineFailure(await cli("deregister", id))).toContain(`no agent with id ${id}`);
  });

  it("fails in one line naming agent_id for an id that is not a UUID", async () => {
    expect(expectOneLineFailure(await cli("deregister", "not-an-id"))).toContain("agent_id");
  });
});

/** The next NDJSON event of a `watch --json` whose type is not UPDATED. */
async function nextEventOtherThanUpdated(watcher: CliProcess): Promise<Record<string, unknown>> {
  for (;;) {
    const event = JSON.parse(await watcher.nextLine()) as Record<string, unknown>;
    if (event["type"] !== "WATCH_EVENT_TYPE_UPDATED") return event;
  }
}

describe("watch", () => {
  it("prints the snapshot, then one NDJSON event per change, and exits 0 on SIGINT", async () => {
    const existing = await register("gpu-01");
    const watcher = watch("--json");
    const first = JSON.parse(await watcher.nextLine()) as Record<string, unknown>;
    expect(first).toMatchObject({ type: "WATCH_EVENT_TYPE_ADDED", snapshot: true, agent: { id: existing, hostname: "gpu-01" } });

    const added = await register("gpu-02");
    const second = JSON.parse(await watcher.nextLine()) as Record<string, unknown>;
    expect(second).toMatchObject({ type: "WATCH_EVENT_TYPE_ADDED", snapshot: false, agent: { id: added, hostname: "gpu-02" } });
    expect(BigInt(second["revision"] as string)).toBeGreaterThan(BigInt(first["revision"] as string));

    // The heartbeat stream that says "leaving" also opens and closes (UPDATED events: stream_connected).
    await leave(added);
    expect(await nextEventOtherThanUpdated(watcher)).toMatchObject({
      type: "WATCH_EVENT_TYPE_STATUS_CHANGED",
      agent: { id: added, status: "AGENT_STATUS_OFFLINE" },
    });

    await client.deregister(existing);
    expect(await nextEventOtherThanUpdated(watcher)).toMatchObject({ type: "WATCH_EVENT_TYPE_REMOVED", agent: { id: existing } });

    watcher.child.kill("SIGINT");
    expect(await watcher.exited).toBe(0);
    expect(watcher.stderr()).toBe("");
  });

  it("prints one line per event and only the agents matching --status and --selector", async () => {
    await register("gpu-01", { gpu: "a100" });
    await register("gpu-02", { gpu: "h100" });
    const watcher = watch("--status", "online", "--selector", "gpu=a100");
    expect(await watcher.nextLine()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ADDED gpu-01 [0-9a-f-]{36} ONLINE$/);
    await register("gpu-03", { gpu: "h100" }); // not matching: no line
    const id = await register("gpu-04", { gpu: "a100" });
    expect(await watcher.nextLine()).toMatch(new RegExp(`^\\S+Z ADDED gpu-04 ${id} ONLINE$`));
    watcher.child.kill("SIGINT");
    expect(await watcher.exited).toBe(0);
  });

  it("fails in one line when the registry shuts down under it", async () => {
    await register("gpu-01");
    const watcher = watch();
    await watcher.nextLine();
    await server.close();
    expect(await watcher.exited).not.toBe(0);
    const lines = watcher.stderr().trimEnd().split("\n");
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^agent-registry: the registry at ${server.httpUrl} is unavailable: `))]);
  });
});

describe("every command", () => {
  it.each(["list", "get", "deregister", "watch"])("%s fails in one line when the registry cannot be reached", async (command) => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const args = command === "get" || command === "deregister" ? [command, UNKNOWN_ID] : [command];
    const line = expectOneLineFailure(await runCli([...args, "--url", url]));
    expect(line).toBe(`agent-registry: cannot reach the registry at ${url}: connection refused`);
  });

  it.each(["list", "get", "deregister", "watch"])("%s --help shows its usage and the --url option, exit 0", async (command) => {
    const result = await runCli([command, "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: agent-registry ${command}`);
    expect(result.stdout).toContain("--url <url>");
    expect(result.stdout).toContain("REGISTRY_URL");
  });

  it("finds the registry through REGISTRY_URL", async () => {
    await register("gpu-01");
    const result = await runCli(["list"], { REGISTRY_URL: server.httpUrl });
    expect(result.code).toBe(0);
    expect(hostnames(result.stdout)).toEqual(["gpu-01"]);
  });

  it("refuses a REGISTRY_URL that is not an http URL in one line naming it", async () => {
    const line = expectOneLineFailure(await runCli(["list"], { REGISTRY_URL: "127.0.0.1:50052" }));
    expect(line).toMatch(/^agent-registry: REGISTRY_URL must be .*http:\/\//);
  });
});
