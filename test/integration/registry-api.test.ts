// The whole AgentRegistry API against a real server, once over gRPC (grpc-js, gRPC port) and once over
// Connect (HTTP port): same results, same status codes.

import { Code } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { validate, version } from "uuid";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, connectClient, grpcClient, rejection } from "../support/clients.js";
import { onDisk, storeWrites, storedAgents } from "../support/stored-agents.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const transports = [
  { name: "gRPC (grpc-js) on the gRPC port", connect: (server: TestServer) => grpcClient(server.grpcAddress) },
  { name: "Connect on the HTTP port", connect: (server: TestServer) => connectClient(server.httpUrl) },
];

const NODE_ID = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";

describe.each(transports)("AgentRegistry over $name", ({ connect }) => {
  let server: TestServer;
  let client: RegistryClient;

  beforeEach(async () => {
    server = await startTestServer();
    client = connect(server);
  });

  afterEach(async () => {
    client.close();
    await server.dispose();
  });

  describe("Register", () => {
    it("gives a node without an id a new UUID v4", async () => {
      const { agent } = await client.register({ hostname: "gpu-1", ipAddress: "10.0.0.7" });
      expect(validate(agent?.id ?? "") && version(agent?.id ?? "")).toBe(4);
      expect(agent?.status).toBe(AgentStatus.ONLINE);
    });

    it("keeps the id a node chose, in lower case", async () => {
      const { agent } = await client.register({ agentId: NODE_ID.toUpperCase(), hostname: "gpu-1" });
      expect(agent?.id).toBe(NODE_ID);
    });

    it("updates the fields on a second register of the same id and keeps registered_at", async () => {
      const first = await client.register({ agentId: NODE_ID, hostname: "gpu-1", ollamaVersion: "0.1.0", port: 0 });
      const second = await client.register({
        agentId: NODE_ID,
        hostname: "gpu-1b",
        ipAddress: "10.0.0.8",
        port: 8080,
        ollamaVersion: "0.2.0",
        labels: { gpu: "a100" },
      });
      expect(second.agent).toMatchObject({ hostname: "gpu-1b", ipAddress: "10.0.0.8", port: 8080, ollamaVersion: "0.2.0" });
      expect(second.agent?.labels).toEqual({ gpu: "a100" });
      expect(second.agent?.registeredAt).toEqual(first.agent?.registeredAt);
      expect((await client.listAgents()).agents).toHaveLength(1);
    });

    it("fills ip_address from the caller's address and port 0 with Ollama's 11434", async () => {
      const { agent } = await client.register({ hostname: "gpu-1" });
      expect(agent?.ipAddress).toBe("127.0.0.1");
      expect(agent?.port).toBe(11434);
    });

    it("tells the node its heartbeat interval and timeout", async () => {
      const response = await client.register({ hostname: "gpu-1" });
      expect(response.heartbeatInterval?.seconds).toBe(30n);
      expect(response.agentTimeout?.seconds).toBe(60n);
    });

    it("shares store writes among concurrent registrations (group commit)", async () => {
      const writesBefore = await storeWrites(server.metrics);
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, i) => client.register({ hostname: `gpu-${i}`, ipAddress: "10.0.0.7" })),
      );
      const writes = (await storeWrites(server.metrics)) - writesBefore;
      expect(writes).toBeGreaterThan(0);
      expect(writes).toBeLessThan(50);
      const stored = await storedAgents(server.dataDir);
      expect(new Set(stored.map((agent) => agent.id))).toEqual(new Set(responses.map((response) => response.agent?.id)));
    });

    it("acknowledges only once the agent is in the store's file", async () => {
      const { agent } = await client.register({ hostname: "gpu-1", ipAddress: "10.0.0.7" });
      expect(await storedAgents(server.dataDir)).toEqual([expect.objectContaining({ id: agent?.id, status: "online", ipAddress: "10.0.0.7" })]);
    });
  });

  describe("bad input", () => {
    const cases = [
      { what: "a non-UUID agent_id", request: { agentId: "node-7", hostname: "gpu-1" }, field: "agent_id" },
      { what: "an empty hostname", request: { hostname: "" }, field: "hostname" },
      { what: "a 254-character hostname", request: { hostname: "a".repeat(254) }, field: "hostname" },
      { what: "a hostname with spaces", request: { hostname: "gpu 1" }, field: "hostname" },
      { what: "port 65536", request: { hostname: "gpu-1", port: 65536 }, field: "port" },
      { what: "a malformed ip_address", request: { hostname: "gpu-1", ipAddress: "300.1.1.1" }, field: "ip_address" },
      { what: "a label key with spaces", request: { hostname: "gpu-1", labels: { "a b": "c" } }, field: "labels" },
    ];

    it.each(cases)("rejects $what with INVALID_ARGUMENT naming $field, and writes nothing", async ({ request, field }) => {
      await client.register({ agentId: NODE_ID, hostname: "existing" });
      const before = await onDisk(server.dataDir);
      const error = await rejection(client.register(request));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.message).toContain(field);
      expect(await onDisk(server.dataDir)).toEqual(before);
      expect((await client.listAgents()).agents.map((agent) => agent.id)).toEqual([NODE_ID]);
    });

    it("rejects an unknown status filter with INVALID_ARGUMENT naming status", async () => {
      const error = await rejection(client.listAgents({ status: 7 as AgentStatus }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.message).toContain("status");
    });

    it("rejects a malformed label selector and a foreign page token", async () => {
      const selector = await rejection(client.listAgents({ labelSelector: "gpu" }));
      expect([selector.code, selector.message]).toEqual([Code.InvalidArgument, expect.stringContaining("label_selector")]);
      const token = await rejection(client.listAgents({ pageToken: "not-ours" }));
      expect([token.code, token.message]).toEqual([Code.InvalidArgument, expect.stringContaining("page_token")]);
    });

    it("rejects a malformed id in GetAgent and Deregister with INVALID_ARGUMENT", async () => {
      expect((await rejection(client.getAgent("nope"))).code).toBe(Code.InvalidArgument);
      expect((await rejection(client.deregister(""))).code).toBe(Code.InvalidArgument);
    });
  });

  describe("GetAgent and Deregister", () => {
    it("returns NOT_FOUND naming the id of an unknown agent", async () => {
      const error = await rejection(client.getAgent(NODE_ID));
      expect(error.code).toBe(Code.NotFound);
      expect(error.message).toContain(NODE_ID);
    });

    it("removes a deregistered agent from the registry and the store", async () => {
      await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      await client.register({ hostname: "gpu-2" });
      await client.deregister(NODE_ID);
      expect((await rejection(client.getAgent(NODE_ID))).code).toBe(Code.NotFound);
      expect((await storedAgents(server.dataDir)).map((agent) => agent.hostname)).toEqual(["gpu-2"]);
      expect((await rejection(client.deregister(NODE_ID))).code).toBe(Code.NotFound);
    });
  });

  describe("ListAgents", () => {
    async function registerFleet(): Promise<void> {
      const fleet: Array<{ hostname: string; labels: Record<string, string> }> = [
        { hostname: "gpu-c", labels: { gpu: "a100", zone: "eu" } },
        { hostname: "gpu-a", labels: { gpu: "h100", zone: "eu" } },
        { hostname: "gpu-b", labels: { gpu: "a100", zone: "us" } },
        { hostname: "gpu-e", labels: { gpu: "a100", zone: "eu" } },
        { hostname: "gpu-d", labels: {} },
      ];
      for (const node of fleet) await client.register(node);
    }

    it("sorts by hostname", async () => {
      await registerFleet();
      const { agents, nextPageToken } = await client.listAgents();
      expect(agents.map((agent) => agent.hostname)).toEqual(["gpu-a", "gpu-b", "gpu-c", "gpu-d", "gpu-e"]);
      expect(nextPageToken).toBe("");
    });

    it("filters by label selector and by status", async () => {
      await registerFleet();
      const a100eu = await client.listAgents({ labelSelector: "gpu=a100,zone=eu" });
      expect(a100eu.agents.map((agent) => agent.hostname)).toEqual(["gpu-c", "gpu-e"]);
      const beat = client.heartbeat();
      const gpuD = (await client.listAgents({ labelSelector: "" })).agents.find((agent) => agent.hostname === "gpu-d");
      beat.send({ agentId: gpuD?.id ?? "", seq: 1n, leaving: true });
      expect((await beat.recv()).status).toBe(AgentStatus.OFFLINE);
      beat.end();
      const offline = await client.listAgents({ status: AgentStatus.OFFLINE });
      expect(offline.agents.map((agent) => agent.hostname)).toEqual(["gpu-d"]);
      const online = await client.listAgents({ status: AgentStatus.ONLINE });
      expect(online.agents).toHaveLength(4);
    });

    it("pages through every agent exactly once, even when agents come and go between pages", async () => {
      await registerFleet();
      const first = await client.listAgents({ pageSize: 2 });
      expect(first.agents.map((agent) => agent.hostname)).toEqual(["gpu-a", "gpu-b"]);
      // Between pages: one already-listed agent goes away and a new one sorts before the cursor.
      await client.deregister(first.agents[0]?.id ?? "");
      await client.register({ hostname: "gpu-0" });
      const seen = first.agents.map((agent) => agent.hostname);
      let token = first.nextPageToken;
      while (token !== "") {
        const page = await client.listAgents({ pageSize: 2, pageToken: token });
        seen.push(...page.agents.map((agent) => agent.hostname));
        token = page.nextPageToken;
      }
      expect(seen).toEqual(["gpu-a", "gpu-b", "gpu-c", "gpu-d", "gpu-e"]);
    });
  });

  describe("Heartbeat", () => {
    it("acks every beat once, echoing its seq, and advances last_heartbeat", async () => {
      const { agent } = await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      const beat = client.heartbeat();
      const seqs: bigint[] = [];
      for (const seq of [1n, 2n, 3n]) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        beat.send({ agentId: NODE_ID, seq });
        const ack = await beat.recv();
        seqs.push(ack.seq);
        expect(ack.status).toBe(AgentStatus.ONLINE);
        expect(ack.heartbeatInterval?.seconds).toBe(30n);
      }
      expect(seqs).toEqual([1n, 2n, 3n]);
      const after = (await client.getAgent(NODE_ID)).agent;
      expect(timestampMs(after!.lastHeartbeat!)).toBeGreaterThan(timestampMs(agent!.lastHeartbeat!));
      expect(after?.streamConnected).toBe(true);
      beat.end();
      expect((await beat.closed).code).toBe(0); // OK: the server finished the stream cleanly
    });

    it("answers every beat sent before the client half-closes, a last leaving among them", async () => {
      await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      const beat = client.heartbeat();
      beat.send({ agentId: NODE_ID, seq: 1n });
      beat.send({ seq: 2n, leaving: true });
      beat.end(); // as `printf ... | grpcurl -d @` does
      expect([(await beat.recv()).seq, (await beat.recv()).seq]).toEqual([1n, 2n]);
      expect((await beat.closed).code).toBe(0);
      expect((await client.getAgent(NODE_ID)).agent?.status).toBe(AgentStatus.OFFLINE);
    });

    it("ends the stream with NOT_FOUND for an unknown agent", async () => {
      const beat = client.heartbeat();
      beat.send({ agentId: NODE_ID, seq: 1n });
      const status = await beat.closed;
      expect(status.code).toBe(Code.NotFound);
      expect(status.message).toContain(NODE_ID);
    });

    it("ends the stream with INVALID_ARGUMENT when the first beat names no agent", async () => {
      const beat = client.heartbeat();
      beat.send({ seq: 1n });
      const status = await beat.closed;
      expect([status.code, status.message]).toEqual([Code.InvalidArgument, expect.stringContaining("agent_id")]);
    });

    it("ends the first stream with ABORTED when a second one opens for the same agent", async () => {
      await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      const first = client.heartbeat();
      first.send({ agentId: NODE_ID, seq: 1n });
      await first.recv();
      const second = client.heartbeat();
      second.send({ agentId: NODE_ID, seq: 1n });
      await second.recv();
      const status = await first.closed;
      expect(status.code).toBe(Code.Aborted);
      second.send({ seq: 2n });
      expect((await second.recv()).seq).toBe(2n);
      second.end();
    });

    it("marks the agent OFFLINE at once on leaving, and keeps a broken stream's agent ONLINE", async () => {
      await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      const broken = client.heartbeat();
      broken.send({ agentId: NODE_ID, seq: 1n });
      await broken.recv();
      broken.cancel();
      await broken.closed;
      await expect.poll(async () => (await client.getAgent(NODE_ID)).agent?.streamConnected).toBe(false);
      expect((await client.getAgent(NODE_ID)).agent?.status).toBe(AgentStatus.ONLINE);

      const leaving = client.heartbeat();
      leaving.send({ agentId: NODE_ID, seq: 2n, leaving: true });
      expect((await leaving.recv()).status).toBe(AgentStatus.OFFLINE);
      expect((await client.getAgent(NODE_ID)).agent?.status).toBe(AgentStatus.OFFLINE);
      expect((await storedAgents(server.dataDir))[0]?.status).toBe("offline");
      leaving.end();
    });

    it("ends an open stream with NOT_FOUND when its agent is deregistered", async () => {
      await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      const beat = client.heartbeat();
      beat.send({ agentId: NODE_ID, seq: 1n });
      await beat.recv();
      await client.deregister(NODE_ID);
      expect((await beat.closed).code).toBe(Code.NotFound);
    });

    it("ends open streams with UNAVAILABLE when the server shuts down", async () => {
      await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      const beat = client.heartbeat();
      beat.send({ agentId: NODE_ID, seq: 1n });
      await beat.recv();
      await server.close();
      expect((await beat.closed).code).toBe(Code.Unavailable);
    });
  });
});

describe("liveness in real time (HEARTBEAT_INTERVAL=0.2, AGENT_TIMEOUT=0.5)", () => {
  it.each(transports)("turns a silent agent OFFLINE after the timeout and back ONLINE on a beat, over $name", async ({ connect }) => {
    const server = await startTestServer({ heartbeatIntervalMs: 200, agentTimeoutMs: 500 });
    const client = connect(server);
    try {
      await client.register({ agentId: NODE_ID, hostname: "gpu-1" });
      const beat = client.heartbeat();
      // Beat twice per interval for 0.8 s (past the timeout), so a busy machine's late timer never makes
      // a gap longer than the timeout.
      for (let seq = 1n; seq <= 8n; seq++) {
        beat.send({ agentId: NODE_ID, seq });
        await beat.recv();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Kept beating past the timeout: still online.
      expect((await client.getAgent(NODE_ID)).agent?.status).toBe(AgentStatus.ONLINE);
      const silentFrom = Date.now();
      await expect
        .poll(async () => (await client.getAgent(NODE_ID)).agent?.status, { timeout: 3000, interval: 20 })
        .toBe(AgentStatus.OFFLINE);
      const took = Date.now() - silentFrom;
      expect(took).toBeGreaterThanOrEqual(300);
      // The stream stayed open: silence alone made it offline; a beat brings it back.
      beat.send({ seq: 9n });
      expect((await beat.recv()).status).toBe(AgentStatus.ONLINE);
      expect((await client.getAgent(NODE_ID)).agent?.status).toBe(AgentStatus.ONLINE);
      beat.end();
    } finally {
      client.close();
      await server.dispose();
    }
  });
});
