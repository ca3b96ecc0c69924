// Three replicas of the real server on one real etcd: a Register acknowledged by one is on every other
// within a second, racing Registers of one id on two replicas issue exactly one secret, a node beating to
// one replica turns OFFLINE on all within a second past its timeout once it stops, and `leaving` is OFFLINE
// everywhere at once. Short intervals (0.5 s beats, 1.5 s timeout; etcd's leases are 2 s at least).

import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, connectClient, grpcClient } from "../support/clients.js";
import { type EtcdCluster, etcdMissing, startEtcd } from "../support/etcd.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

const missing = etcdMissing();
if (missing !== undefined) console.warn(`skipping the etcd replica tests: ${missing}`);

const TIMEOUT_MS = 1500;

describe.skipIf(missing !== undefined)("three replicas on one etcd", () => {
  let etcd: EtcdCluster;
  let dataDir: string;
  const replicas: ServerProcess[] = [];
  const clients: RegistryClient[] = [];

  beforeAll(async () => {
    etcd = await startEtcd(1);
    dataDir = await mkdtemp(join(tmpdir(), "registry-replicas-"));
    for (let i = 0; i < 3; i++) {
      const replica = await startServerProcess(join(dataDir, `r${i}`), {
        REGISTRY_STORE: "etcd",
        REGISTRY_ETCD_ENDPOINTS: etcd.endpoints,
        REGISTRY_ETCD_PREFIX: "/replicas-test/",
        HEARTBEAT_INTERVAL: "0.5",
        AGENT_TIMEOUT: String(TIMEOUT_MS / 1000),
        LOG_LEVEL: process.env["DEBUG_REPLICAS"] ?? "warn",
      });
      replicas.push(replica);
      clients.push(i === 1 ? connectClient(replica.httpUrl) : grpcClient(replica.grpcAddress));
    }
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    for (const replica of replicas) {
      replica.child.kill("SIGKILL");
      await replica.exited;
    }
    await etcd?.stop();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  const client = (i: number): RegistryClient => clients[i] as RegistryClient;

  async function statusOn(i: number, id: string): Promise<AgentStatus | undefined> {
    try {
      return (await client(i).getAgent(id)).agent?.status;
    } catch {
      return undefined;
    }
  }

  /** Polls every replica until each shows `status` for `id`; resolves with the ms it took. */
  async function everywhere(id: string, status: AgentStatus, withinMs: number): Promise<number> {
    const started = Date.now();
    for (;;) {
      const seen = await Promise.all([0, 1, 2].map((i) => statusOn(i, id)));
      if (seen.every((s) => s === status)) return Date.now() - started;
      if (Date.now() - started > withinMs) throw new Error(`agent ${id}: replicas show ${seen.map(String).join(", ")}, wanted ${status} within ${withinMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  it("shows a Register acknowledged by one replica on every other within a second, with etcd's revisions", async () => {
    const watch = client(2).watch();
    const { agent } = await client(0).register({ hostname: "visible-1", ipAddress: "10.0.0.1", port: 11434 });
    const id = agent?.id ?? "";
    const tookMs = await everywhere(id, AgentStatus.ONLINE, 1000);
    const { agents } = await client(1).listAgents();
    expect(agents.map((a) => a.id)).toContain(id);
    for (;;) {
      const event = await watch.recv();
      if (event.agent?.id === id) {
        expect(Number(event.revision)).toBeGreaterThan(0);
        break;
      }
    }
    watch.cancel();
    console.log(`register on replica 0 visible on all three after ${tookMs} ms`);
  });

  it("issues exactly one secret when two replicas race a Register of one id, 50 rounds in a row", async () => {
    for (let round = 0; round < 50; round++) {
      const id = randomUUID();
      const results = await Promise.allSettled([
        client(0).register({ agentId: id, hostname: `race-a-${round}`, ipAddress: "10.0.0.2", port: 11434 }),
        client(2).register({ agentId: id, hostname: `race-b-${round}`, ipAddress: "10.0.0.3", port: 11434 }),
      ]);
      const secrets = results.filter((r) => r.status === "fulfilled" && r.value.agentSecret !== "");
      expect(secrets, `round ${round}: ${JSON.stringify(results.map((r) => (r.status === "fulfilled" ? "ok" : String(r.reason))))}`).toHaveLength(1);
      // Gone again, so that a hundred nodes that never beat do not make the offline guard hold the next tests' timeouts.
      await client(1).deregister(id);
    }
  });

  it("turns a node that stops beating to one replica OFFLINE on every replica within a second past its timeout", async () => {
    const { agent } = await client(0).register({ hostname: "stops", ipAddress: "10.0.0.4", port: 11434 });
    const id = agent?.id ?? "";
    const beats = client(0).heartbeat();
    let lastBeatAt = 0;
    for (let n = 0; n < 4; n++) {
      beats.send({ agentId: id });
      await beats.recv();
      lastBeatAt = Date.now();
      if (n < 3) await new Promise((resolve) => setTimeout(resolve, 400));
    }
    const stoppedAt = lastBeatAt;
    beats.cancel();
    await everywhere(id, AgentStatus.OFFLINE, TIMEOUT_MS + 1000).catch((error: unknown) => {
      if (process.env["DEBUG_REPLICAS"] !== undefined) console.log(replicas[0]?.stderr().slice(-6000));
      throw error;
    });
    const tookMs = Date.now() - stoppedAt;
    expect(tookMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    console.log(`OFFLINE on all three ${tookMs - TIMEOUT_MS} ms past the timeout (from the last beat)`);
  });

  it("turns a node that says it is leaving OFFLINE on every replica at once", async () => {
    const { agent } = await client(2).register({ hostname: "leaves", ipAddress: "10.0.0.5", port: 11434 });
    const id = agent?.id ?? "";
    const beats = client(2).heartbeat();
    beats.send({ agentId: id });
    await beats.recv();
    beats.send({ agentId: id, leaving: true });
    await beats.recv();
    const tookMs = await everywhere(id, AgentStatus.OFFLINE, 1000);
    beats.end();
    console.log(`leaving OFFLINE on all three after ${tookMs} ms`);
  });
});
