// Clients that hang up mid-stream, against the real server process: 50 Connect watchers (HTTP/2 and
// HTTP/1.1) leave while the server is still writing a large snapshot to them. Each is no more than a debug
// line without a stack (connect-node alone would print "handler for rpc WatchAgents ... failed" with one
// through console.error); the server serves on and frees every watcher's slot.

import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { AgentRegistry } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, connectClient } from "../support/clients.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { makeDataDir } from "../support/test-server.js";

const AGENTS = 300;
/** ~15 KB of labels an agent: a snapshot of ~4.5 MB, far more than the socket buffers hold. */
const LABELS = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, "v".repeat(250)]));

let server: ServerProcess | undefined;
const clients: RegistryClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  if (server !== undefined && server.child.exitCode === null) {
    server.child.kill("SIGKILL");
    await server.exited;
  }
  server = undefined;
});

function connect(url: string): RegistryClient {
  const client = connectClient(url);
  clients.push(client);
  return client;
}

/** Watches over Connect on HTTP/1.1 and leaves once the first event is in. */
async function watchOverHttp1AndLeave(url: string): Promise<void> {
  const client = createClient(AgentRegistry, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  const leave = new AbortController();
  try {
    for await (const event of client.watchAgents({}, { signal: leave.signal })) {
      expect(event.agent?.hostname).toMatch(/^gpu-/);
      leave.abort();
    }
  } catch {
    // Cancelled by this side, as meant.
  }
}

/** Watches over Connect on HTTP/2 and leaves once the first event is in: the stream reset, or the whole connection. */
async function watchOverHttp2AndLeave(url: string, how: "stream" | "connection"): Promise<void> {
  const client = connect(url);
  const watch = client.watch();
  expect((await watch.recv()).agent?.hostname).toMatch(/^gpu-/);
  if (how === "stream") watch.cancel();
  else client.close();
}

async function watchers(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^agent_registry_watchers (\d+)$/m.exec(text)?.[1]);
}

describe("Connect watchers that disconnect mid-stream", () => {
  it("leave only debug lines without stacks on stderr, and the server serving with every slot free", async () => {
    server = await startServerProcess(await makeDataDir(), { LOG_LEVEL: "debug" });
    const { httpUrl } = server;
    const registrar = connect(httpUrl);
    for (let start = 0; start < AGENTS; start += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => registrar.register({ hostname: `gpu-${start + i}`, ipAddress: "10.0.0.1", labels: LABELS })),
      );
    }

    await Promise.all([
      ...Array.from({ length: 20 }, () => watchOverHttp1AndLeave(httpUrl)),
      ...Array.from({ length: 15 }, () => watchOverHttp2AndLeave(httpUrl, "stream")),
      ...Array.from({ length: 15 }, () => watchOverHttp2AndLeave(httpUrl, "connection")),
    ]);

    await expect.poll(() => watchers(httpUrl), { timeout: 5000 }).toBe(0);
    expect((await registrar.listAgents({ pageSize: 1 })).agents).toHaveLength(1);
    server.child.kill("SIGTERM");
    expect((await server.exited).code).toBe(0);
    const stderr = server.stderr();
    expect(stderr).not.toMatch(/\n\s+at |handler for rpc|"stack"/);
    const lines = stderr.trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    const left = lines.filter((line) => line["msg"] === "client went away while its response was written");
    // The watchers really did leave mid-write (else this test proves nothing), and each was a debug line.
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((line) => line["level"] === 20 && line["method"] === "WatchAgents")).toBe(true);
    expect(lines.filter((line) => Number(line["level"]) >= 40)).toEqual([]);
  });
});
