// The server's resource limits against a real server, each set small: the precise status a client gets,
// one warn line for the operator (and a counter), and the server serving on. Over gRPC (grpc-js, gRPC port)
// and Connect (HTTP port) alike wherever the limit applies to both.

import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, LIMIT_SETTINGS, type LimitsConfig } from "../../src/config/index.js";
import type { Log } from "../../src/common/log.js";
import { type BeatStream, type RegistryClient, RpcError, type WatchStream, connectClient, grpcClient, rejection } from "../support/clients.js";
import { AgentStatus, RegisterRequestSchema } from "../../gen/registry/v1/registry_pb.js";
import { runCli } from "../support/cli-process.js";
import { FakeClock } from "../support/fake-clock.js";
import { grpcFrame, rawGrpc, rawHttp } from "../support/raw-wire.js";
import { storedAgents } from "../support/stored-agents.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const transports = [
  { name: "gRPC (grpc-js) on the gRPC port", connect: (server: TestServer) => grpcClient(server.grpcAddress) },
  { name: "Connect on the HTTP port", connect: (server: TestServer) => connectClient(server.httpUrl) },
];

const A = "11111111-1111-4111-8111-111111111111";
const B = "22222222-2222-4222-8222-222222222222";
const C = "33333333-3333-4333-8333-333333333333";

/** The warn lines a server wrote, as pino would get them. */
class LogLines implements Log {
  readonly warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  debug(): void {}
  info(): void {}
  error(): void {}
  warn(fields: object, message: string): void {
    this.warnings.push({ fields: fields as Record<string, unknown>, message });
  }
  of(limit: string): Array<{ fields: Record<string, unknown>; message: string }> {
    return this.warnings.filter((line) => line.fields["limit"] === limit);
  }
}

const servers: TestServer[] = [];
const clients: RegistryClient[] = [];

async function start(limits: Partial<LimitsConfig>, clock?: FakeClock): Promise<{ server: TestServer; log: LogLines }> {
  const log = new LogLines();
  const server = await startTestServer({ limits: { ...DEFAULT_LIMITS, ...limits } }, { log, ...(clock === undefined ? {} : { clock }) });
  servers.push(server);
  return { server, log };
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.dispose();
});

/** How many refusals the server counted for `limit` (agent_registry_limit_refusals_total). */
async function refusals(server: TestServer, limit: string): Promise<number> {
  const { body } = await server.metrics.text();
  const line = body.split("\n").find((text) => text.startsWith(`agent_registry_limit_refusals_total{limit="${limit}"}`));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

/** Retries `attempt` until it resolves (the server may take a moment to notice a stream went away). */
async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/** Opens a stream for `agentId` and waits for the ack of its first beat. */
async function beating(client: RegistryClient, agentId: string): Promise<BeatStream> {
  const beat = client.heartbeat();
  beat.send({ agentId, seq: 1n });
  await beat.recv();
  return beat;
}

/** Opens a watch and reads its snapshot of `size` agents. */
async function watching(client: RegistryClient, size: number): Promise<WatchStream> {
  const watch = client.watch();
  for (let i = 0; i < size; i++) await watch.recv();
  return watch;
}

/** Resolves with "pending" if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([promise, new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), ms))]);
}

describe.each(transports)("limits over $name", ({ connect }) => {
  const client = (server: TestServer): RegistryClient => {
    const made = connect(server);
    clients.push(made);
    return made;
  };

  describe("maxMessageBytes", () => {
    it("refuses a larger Register with RESOURCE_EXHAUSTED, logs it, and takes the next one", async () => {
      const { server, log } = await start({ maxMessageBytes: 4096 });
      const caller = client(server);
      const labels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, "v".repeat(200)]));

      const error = await rejection(caller.register({ hostname: "gpu-1", labels }));

      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.message).toMatch(/4096/);
      expect(log.of("maxMessageBytes")).toHaveLength(1);
      expect(await refusals(server, "maxMessageBytes")).toBe(1);
      expect((await caller.register({ hostname: "gpu-1" })).agent?.hostname).toBe("gpu-1");
    });

    it("ends a Heartbeat stream whose message is larger with RESOURCE_EXHAUSTED", async () => {
      const { server } = await start({ maxMessageBytes: 4096 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      const beat = await beating(caller, A);

      beat.send({ seq: 2n, ollamaVersion: "x".repeat(5000) });

      expect((await beat.closed).code).toBe(Code.ResourceExhausted);
      await eventually(async () => expect(await refusals(server, "maxMessageBytes")).toBe(1));
    });
  });

  describe("registration rules (fixed limits)", () => {
    const atLimit = [
      { what: "64 labels", request: { labels: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "v"])) } },
      { what: "a 63-character label key", request: { labels: { ["k".repeat(63)]: "v" } } },
      { what: "a 255-character label value", request: { labels: { gpu: "v".repeat(255) } } },
      { what: "a 253-character hostname", request: { hostname: `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}` } },
    ];
    const overLimit = [
      { what: "65 labels", request: { labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }, rule: /at most 64 labels/ },
      { what: "a 64-character label key", request: { labels: { ["k".repeat(64)]: "v" } }, rule: /key .* 1 to 63/ },
      { what: "a 256-character label value", request: { labels: { gpu: "v".repeat(256) } }, rule: /at most 255/ },
      { what: "a 254-character hostname", request: { hostname: `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(62)}` }, rule: /at most 253 characters, got 254/ },
    ];

    it.each(atLimit)("accepts $what, and serves the agent ONLINE with it as sent", async ({ request }) => {
      const { server } = await start({});
      const caller = client(server);
      const sent = { hostname: "gpu-1", labels: {}, ...request };
      const { agent: registered } = await caller.register(sent);

      const { agent } = await caller.getAgent(registered?.id ?? "");

      expect({ status: agent?.status, hostname: agent?.hostname, labels: agent?.labels }).toEqual({ status: AgentStatus.ONLINE, ...sent });
    });

    it.each(overLimit)("refuses $what with INVALID_ARGUMENT naming the rule, and logs it", async ({ request, rule }) => {
      const { server, log } = await start({});
      const error = await rejection(client(server).register({ hostname: "gpu-1", ...request }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.message).toMatch(rule);
      expect(log.of("registrationRules")).toEqual([expect.objectContaining({ message: "Register refused: invalid registration" })]);
    });
  });

  describe("maxAgents", () => {
    it("refuses a new id past the cap naming the cap and the setting, writes nothing, and still re-registers known ids", async () => {
      const { server, log } = await start({ maxAgents: 2 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      await caller.register({ agentId: B, hostname: "gpu-b" });

      const error = await rejection(caller.register({ agentId: C, hostname: "gpu-c" }));

      expect(error.code).toBe(Code.ResourceExhausted);
      expect(error.message).toMatch(/the registry is full: it holds 2 agents, the most --max-agents \(REGISTRY_MAX_AGENTS\) allows/);
      expect((await caller.register({ agentId: A, hostname: "gpu-a2" })).agent?.hostname).toBe("gpu-a2");
      expect((await caller.listAgents()).agents.map((agent) => agent.id)).toEqual([A, B]);
      expect((await storedAgents(server.dataDir)).map((agent) => agent.id).sort()).toEqual([A, B]);
      expect(log.of("maxAgents")).toEqual([expect.objectContaining({ message: "Register refused: the registry is full" })]);
      expect(await refusals(server, "maxAgents")).toBe(1);
      expect((await server.metrics.text()).body).toMatch(/^agent_registry_max_agents 2$/m);
    });
  });

  describe("maxRegistrationsPerSecond", () => {
    it("refuses the 6th of a burst when 5 a second are allowed, says when to retry, and takes one more once refilled", async () => {
      const clock = new FakeClock();
      const { server, log } = await start({ maxRegistrationsPerSecond: 5 }, clock);
      const caller = client(server);
      for (let i = 0; i < 5; i++) await caller.register({ hostname: `gpu-${i}` });

      const sixth = await rejection(caller.register({ hostname: "gpu-5" }));

      expect(sixth.code).toBe(Code.ResourceExhausted);
      expect(sixth.message).toMatch(/at most 5 a second; retry in 200 ms/);
      clock.advance(199);
      expect((await rejection(caller.register({ hostname: "gpu-5" }))).message).toMatch(/retry in 1 ms/);
      clock.advance(1);
      expect((await caller.register({ hostname: "gpu-5" })).agent?.hostname).toBe("gpu-5");
      expect((await rejection(caller.register({ hostname: "gpu-6" }))).code).toBe(Code.ResourceExhausted);
      // Three refusals, one line: the rest fell within the same ten seconds.
      expect(log.of("maxRegistrationsPerSecond")).toHaveLength(1);
      expect(await refusals(server, "maxRegistrationsPerSecond")).toBe(3);
      expect((await caller.listAgents()).agents).toHaveLength(6);
    });
  });

  describe("maxStreams", () => {
    it("counts Heartbeat and WatchAgents streams together, refuses past the limit, and admits again once one ends", async () => {
      const { server, log } = await start({ maxStreams: 2 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      await caller.register({ agentId: B, hostname: "gpu-b" });
      const beat = await beating(caller, A);
      const watch = await watching(caller, 2);

      const refusedWatch = await rejection(caller.watch().recv());
      const refusedBeat = caller.heartbeat();
      refusedBeat.send({ agentId: B, seq: 1n });

      expect(refusedWatch.code).toBe(Code.ResourceExhausted);
      expect(refusedWatch.message).toMatch(/too many open streams: this server allows 2/);
      expect((await refusedBeat.closed).code).toBe(Code.ResourceExhausted);
      expect(log.of("maxStreams")).toHaveLength(1);
      expect(await refusals(server, "maxStreams")).toBe(2);

      watch.cancel();
      await eventually(() => beating(caller, B));
      beat.end();
      await beat.closed;
    });
  });

  describe("maxWatchers", () => {
    it("refuses a watcher past the limit with RESOURCE_EXHAUSTED, and admits one again once a watcher leaves", async () => {
      const { server, log } = await start({ maxWatchers: 1 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      const first = await watching(caller, 1);

      const refused = await rejection(caller.watch().recv());

      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.message).toMatch(/too many watchers: this server allows 1/);
      expect(log.of("maxWatchers")).toHaveLength(1);
      first.cancel();
      const again = await eventually(() => watching(caller, 1));
      again.cancel();
    });
  });

  describe("watchers cut off for falling behind", () => {
    it("keep their slot while their stream stays open, so a client that never reads cannot open more", async () => {
      const { server } = await start({ maxWatchers: 1, watchQueueLimit: 5 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      const stuck = await watching(caller, 1); // the stream is open
      stuck.pause();
      // Far more changes than the watcher's queue and the transport's buffers hold, one after the other so the
      // buffers fill first: it is cut off. One agent re-registered with a new label each time, so that every
      // write of the store stays small (agents.json is written whole).
      for (let n = 0; n < 1500; n++) await caller.register({ agentId: B, hostname: "gpu-b", labels: { pad: `${n}-${"x".repeat(200)}` } });
      await eventually(async () => expect(server.registry.stats().watchers).toBe(0));

      expect((await rejection(caller.watch().recv())).code).toBe(Code.ResourceExhausted);
      stuck.cancel();
      const again = await eventually(() => watching(caller, 1));
      again.cancel();
      // 1 500 durable writes, one after the other: about 4 ms each on this disk, more on a loaded machine.
    }, 60_000);
  });

  describe("firstBeatTimeout", () => {
    it("ends a Heartbeat stream that sends nothing with DEADLINE_EXCEEDED, and frees its slot", async () => {
      const { server, log } = await start({ firstBeatTimeoutMs: 200, maxStreams: 1 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      const started = Date.now();

      const silent = caller.heartbeat();
      const ended = await silent.closed;

      expect(ended.code).toBe(Code.DeadlineExceeded);
      expect(ended.message).toMatch(/no message within 0.2 s/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      expect(log.of("firstBeatTimeoutMs")).toHaveLength(1);
      // The one slot is free again: a stream that beats is admitted.
      const beat = await beating(caller, A);
      beat.end();
      await beat.closed;
    });

    it("leaves a stream alone once its first beat came in time", async () => {
      const { server } = await start({ firstBeatTimeoutMs: 200 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      const beat = await beating(caller, A);

      await new Promise((resolve) => setTimeout(resolve, 400));
      beat.send({ seq: 2n });

      expect((await beat.recv()).seq).toBe(2n);
      beat.end();
      expect((await beat.closed).code).toBe(0);
    });
  });

  describe("maxStreamsPerConnection", () => {
    it("holds a connection's stream past the limit until another one ends, and logs that the connection is full", async () => {
      const { server, log } = await start({ maxStreamsPerConnection: 2 });
      const caller = client(server);
      for (const [id, name] of [[A, "gpu-a"], [B, "gpu-b"], [C, "gpu-c"]] as const) await caller.register({ agentId: id, hostname: name });
      const first = await beating(caller, A);
      await beating(caller, B);

      const third = caller.heartbeat();
      third.send({ agentId: C, seq: 1n });

      const ack = third.recv();
      expect(await within(ack, 300)).toBe("pending");
      expect(log.of("maxStreamsPerConnection")).toEqual([
        expect.objectContaining({ fields: expect.objectContaining({ listener: connect === transports[0]?.connect ? "grpc" : "http", max: 2 }) }),
      ]);
      first.end();
      expect((await ack).seq).toBe(1n);
    });
  });

  describe("watchQueueLimit", () => {
    it("cuts off a watcher that falls behind with RESOURCE_EXHAUSTED, and logs it", async () => {
      const { server, log } = await start({ watchQueueLimit: 20 });
      const caller = client(server);
      await caller.register({ agentId: A, hostname: "gpu-a" });
      const slow = await watching(caller, 1);
      slow.pause();
      const beat = await beating(caller, A);

      const changes = 2000;
      for (let seq = 2; seq <= changes; seq++) beat.send({ seq: BigInt(seq), draining: seq % 2 === 0 });
      for (let seq = 2; seq <= changes; seq++) await beat.recv();
      slow.resume();
      let error: unknown;
      for (let read = 0; read <= changes && error === undefined; read++) await slow.recv().catch((reason: unknown) => (error = reason));

      expect((error as RpcError).code).toBe(Code.ResourceExhausted);
      expect(log.of("watchQueueLimit")).toEqual([expect.objectContaining({ fields: expect.objectContaining({ max: 20 }) })]);
      beat.end();
    });
  });
});

describe("on the wire", () => {
  /** Opens `count` streams at once on one new HTTP/2 connection, before the server's SETTINGS can arrive. */
  async function rushStreams(url: string, count: number): Promise<number[]> {
    const session = http2.connect(url);
    session.on("error", () => {});
    const codes = await Promise.all(
      Array.from({ length: count }, () => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/registry.v1.AgentRegistry/Heartbeat",
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("error", () => {});
        return within(new Promise<number>((resolve) => stream.once("close", () => resolve(stream.rstCode ?? 0))), 500);
      }),
    );
    session.destroy();
    return codes.map((code) => (code === "pending" ? -1 : code));
  }

  it.each([
    { listener: "gRPC", url: (server: TestServer) => `http://${server.grpcAddress}` },
    { listener: "HTTP (h2c)", url: (server: TestServer) => server.httpUrl },
  ])("refuses a stream past maxStreamsPerConnection on the $listener port with REFUSED_STREAM, when a client ignores the limit", async ({ url }) => {
    const { server } = await start({ maxStreamsPerConnection: 2 });

    const codes = await rushStreams(url(server), 3);

    // Two streams stay open (-1: still open when looked at); the third is reset before any handler ran.
    expect(codes.sort()).toEqual([-1, -1, http2.constants.NGHTTP2_REFUSED_STREAM]);
  });

  it("tells a gRPC client when to retry a refused Register: grpc-retry-pushback-ms", async () => {
    const { server } = await start({ maxRegistrationsPerSecond: 1 }, new FakeClock());
    const body = grpcFrame(toBinary(RegisterRequestSchema, create(RegisterRequestSchema, { hostname: "gpu-1" })));
    expect((await rawGrpc(server.grpcAddress, { path: "/registry.v1.AgentRegistry/Register", body })).grpcStatus).toBe(0);

    const refused = await rawGrpc(server.grpcAddress, { path: "/registry.v1.AgentRegistry/Register", body });

    expect(refused.grpcStatus).toBe(Code.ResourceExhausted);
    expect(refused.metadata["grpc-retry-pushback-ms"]).toBe("1000");
  });

  it("tells a Connect client when to retry a refused Register: HTTP 429 with Retry-After", async () => {
    const { server } = await start({ maxRegistrationsPerSecond: 1 }, new FakeClock());
    const request = { path: "/registry.v1.AgentRegistry/Register", headers: { "content-type": "application/json" }, body: '{"hostname":"gpu-1"}' };
    expect((await rawHttp(server.httpUrl, request)).status).toBe(200);

    const refused = await rawHttp(server.httpUrl, request);

    expect([refused.status, refused.json?.code]).toEqual([429, "resource_exhausted"]);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.headers["grpc-retry-pushback-ms"]).toBe("1000");
  });
});

describe("agent-registry serve", () => {
  const env = { REGISTRY_DATA_DIR: "/nonexistent/agent-registry-limits-test", REGISTRY_GRPC_LISTEN: "127.0.0.1:0", REGISTRY_HTTP_LISTEN: "127.0.0.1:0" };

  it("lists every limit flag with its variable in --help", async () => {
    const { code, stdout } = await runCli(["serve", "--help"], env);

    expect(code).toBe(0);
    for (const setting of LIMIT_SETTINGS) expect(stdout).toContain(`${setting.flag} <`);
    for (const setting of LIMIT_SETTINGS) expect(stdout.replace(/\s+/g, " ")).toContain(`env: ${setting.env}`);
  });

  it("refuses a bad limit flag with one line naming the flag", async () => {
    const { code, stderr } = await runCli(["serve", "--max-streams", "0"], env);

    expect(code).toBe(1);
    expect(stderr).toBe('agent-registry: --max-streams must be a whole number from 1 to 2147483647 (default 20000), got "0"\n');
  });

  it("refuses a bad limit variable with one line naming the variable", async () => {
    const { code, stderr } = await runCli(["serve"], { ...env, REGISTRY_FIRST_BEAT_TIMEOUT: "soon" });

    expect(code).toBe(1);
    expect(stderr).toMatch(/^agent-registry: REGISTRY_FIRST_BEAT_TIMEOUT must be a number of seconds from 0\.001 to 86400/);
  });
});
