// WatchAgents against a real server over both transports: the snapshot, then every visible change once
// and in order; filters; a slow watcher is cut off without slowing beats.

import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentStatus, type WatchAgentsResponse, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, RpcError, type WatchStream, connectClient, grpcClient } from "../support/clients.js";
import { DEFAULT_LIMITS } from "../../src/config/index.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const transports = [
  { name: "gRPC (grpc-js) on the gRPC port", connect: (server: TestServer) => grpcClient(server.grpcAddress) },
  { name: "Connect on the HTTP port", connect: (server: TestServer) => connectClient(server.httpUrl) },
];

const A = "11111111-1111-4111-8111-111111111111";
const B = "22222222-2222-4222-8222-222222222222";

type Seen = [type: string, hostname: string, detail: string];

function describeEvent(event: WatchAgentsResponse): Seen {
  const agent = event.agent;
  const status = agent?.status === AgentStatus.ONLINE ? "online" : "offline";
  const detail = `${status}${agent?.streamConnected === true ? " stream" : ""}${agent?.draining === true ? " draining" : ""}`;
  return [WatchEventType[event.type], agent?.hostname ?? "", detail];
}

async function take(watch: WatchStream, count: number): Promise<WatchAgentsResponse[]> {
  const events: WatchAgentsResponse[] = [];
  while (events.length < count) events.push(await watch.recv());
  return events;
}

/** Fails if an event arrives within `ms`. */
async function expectQuiet(watch: WatchStream, ms = 100): Promise<void> {
  const next = watch.recv();
  const outcome = await Promise.race([next.then(describeEvent), new Promise((resolve) => setTimeout(() => resolve("quiet"), ms))]);
  expect(outcome).toBe("quiet");
  void next.catch(() => {}); // the watch is cancelled by the test afterwards
}

describe.each(transports)("WatchAgents over $name", ({ connect }) => {
  let server: TestServer;
  let client: RegistryClient;

  beforeEach(async () => {
    server = await startTestServer({ limits: { ...DEFAULT_LIMITS, watchQueueLimit: 50 } });
    client = connect(server);
  });

  afterEach(async () => {
    client.close();
    await server.dispose();
  });

  it("sends the snapshot, then every visible change exactly once and in order", async () => {
    await client.register({ agentId: A, hostname: "gpu-a" });
    const watch = client.watch();
    const [snapshot] = await take(watch, 1);
    expect(snapshot?.snapshot).toBe(true);
    expect(describeEvent(snapshot!)).toEqual(["ADDED", "gpu-a", "online"]);

    await client.register({ agentId: B, hostname: "gpu-b" });
    const beat = client.heartbeat();
    beat.send({ agentId: B, seq: 1n });
    await beat.recv();
    beat.send({ seq: 2n }); // changes nothing visible
    await beat.recv();
    beat.send({ seq: 3n, draining: true });
    await beat.recv();
    beat.send({ seq: 4n, leaving: true });
    await beat.recv();
    beat.end();
    await beat.closed;
    await client.register({ agentId: B, hostname: "gpu-b" });
    await client.deregister(A);

    const events = await take(watch, 7);
    expect(events.map(describeEvent)).toEqual([
      ["ADDED", "gpu-b", "online"],
      ["UPDATED", "gpu-b", "online stream"],
      ["UPDATED", "gpu-b", "online stream draining"],
      ["STATUS_CHANGED", "gpu-b", "offline stream draining"],
      ["UPDATED", "gpu-b", "offline draining"],
      ["STATUS_CHANGED", "gpu-b", "online draining"],
      ["REMOVED", "gpu-a", "online"],
    ]);
    const revisions = [snapshot!, ...events].map((event) => Number(event.revision));
    expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
    expect(new Set(revisions.slice(1)).size).toBe(7);
    expect(revisions[1]).toBeGreaterThan(revisions[0] as number);
    expect(events.every((event) => !event.snapshot)).toBe(true);
    await expectQuiet(watch);
    watch.cancel();
  });

  it("applies filters: an agent leaving the filter is REMOVED for that watcher, one entering it ADDED", async () => {
    await client.register({ agentId: A, hostname: "gpu-a", labels: { gpu: "a100" } });
    await client.register({ agentId: B, hostname: "gpu-b", labels: { gpu: "h100" } });
    const watch = client.watch({ status: AgentStatus.ONLINE, labelSelector: "gpu=a100" });
    expect((await take(watch, 1)).map(describeEvent)).toEqual([["ADDED", "gpu-a", "online"]]);

    const beat = client.heartbeat();
    beat.send({ agentId: A, seq: 1n, leaving: true });
    await beat.recv();
    beat.end();
    await client.register({ agentId: B, hostname: "gpu-b", labels: { gpu: "a100" } });
    expect((await take(watch, 3)).map(describeEvent)).toEqual([
      ["UPDATED", "gpu-a", "online stream"],
      ["REMOVED", "gpu-a", "offline stream"],
      ["ADDED", "gpu-b", "online"],
    ]);
    watch.cancel();
  });

  it("rejects a malformed filter with INVALID_ARGUMENT", async () => {
    const watch = client.watch({ labelSelector: "no-equals-sign" });
    const error = await watch.recv().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe(Code.InvalidArgument);
    expect((error as RpcError).message).toContain("label_selector");
  });

  it("cuts off a watcher that stops reading with RESOURCE_EXHAUSTED, while beats keep being acked", async () => {
    await client.register({ agentId: A, hostname: "gpu-a" });
    const slow = client.watch();
    await take(slow, 1);
    slow.pause();
    const beat = client.heartbeat();
    beat.send({ agentId: A, seq: 0n });
    await beat.recv();
    const fast = client.watch();
    await take(fast, 1);
    // This one keeps reading while the changes happen.
    const changes = 3000;
    const fastSaw = take(fast, changes);

    // Each beat flips draining: one visible change each, far more than the watcher's queue and the
    // transport's buffers hold. Every beat is still acked at once.
    for (let seq = 1; seq <= changes; seq++) beat.send({ seq: BigInt(seq), draining: seq % 2 === 1 });
    for (let seq = 1; seq <= changes; seq++) expect((await beat.recv()).seq).toBe(BigInt(seq));
    beat.end();

    // The reading watcher saw every change, in order.
    const seen = await fastSaw;
    expect(seen.map((event) => event.agent?.draining)).toEqual(
      Array.from({ length: changes }, (_, i) => i % 2 === 0),
    );

    slow.resume();
    let error: unknown;
    for (let read = 0; read <= changes && error === undefined; read++) {
      await slow.recv().catch((reason: unknown) => (error = reason));
    }
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe(Code.ResourceExhausted);
    expect((error as RpcError).message).toContain("watch again");
  });

  it("ends watches with UNAVAILABLE when the server shuts down", async () => {
    await client.register({ agentId: A, hostname: "gpu-a" });
    const watch = client.watch();
    await take(watch, 1); // the stream is open
    await server.close();
    const error = await watch.recv().then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect((error as RpcError).code).toBe(Code.Unavailable);
  });
});
