// A 3-member etcd cluster on loopback under two replicas and a real daemon: kill -9 of the etcd leader. The
// cluster elects another and extends every lease across the change, the replicas move to the members left,
// writes come back by themselves, and the beating node is never OFFLINE on either replica.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { type AgentProcess, startAgentProcess } from "../support/agent-process.js";
import { type RegistryClient, grpcClient } from "../support/clients.js";
import { type EtcdCluster, etcdMissing, startEtcd } from "../support/etcd.js";
import { type FakeOllama, startFakeOllama } from "../support/fake-ollama.js";
import { type Replica, startReplicas } from "../support/replicas.js";

const missing = etcdMissing();
if (missing !== undefined) console.warn(`skipping the etcd cluster test: ${missing}`);

const TIMEOUT_MS = 1500;

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(missing !== undefined)("the etcd leader killed under the replicas", () => {
  let etcd: EtcdCluster;
  let dataDir: string;
  let ollama: FakeOllama;
  let replicas: Replica[] = [];
  let daemon: AgentProcess;
  let clients: RegistryClient[] = [];

  beforeAll(async () => {
    etcd = await startEtcd(3);
    dataDir = await mkdtemp(join(tmpdir(), "registry-etcd-cluster-"));
    ollama = await startFakeOllama();
    replicas = await startReplicas(2, dataDir, etcd.endpoints, { HEARTBEAT_INTERVAL: "0.5", AGENT_TIMEOUT: String(TIMEOUT_MS / 1000) });
    clients = replicas.map((replica) => grpcClient(replica.grpcAddress));
    daemon = await startAgentProcess(["--hostname", "gpu-etcd-cluster"], {
      REGISTRY_ADDR: replicas.map((replica) => replica.grpcAddress).join(","),
      OLLAMA_URL: ollama.url,
      REGISTRY_DATA_DIR: join(dataDir, "daemon"),
      LOG_LEVEL: "warn",
    });
    for (;;) {
      const seen = await clients[1]?.getAgent(daemon.agentId).catch(() => undefined);
      if (seen?.agent?.status === AgentStatus.ONLINE && seen.agent.streamConnected) break;
      await wait(100);
    }
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.close();
    daemon?.child.kill("SIGKILL");
    await daemon?.exited;
    for (const replica of replicas) await replica.kill();
    await ollama?.close();
    await etcd?.stop();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  it("turns no node OFFLINE and takes writes again by itself", async () => {
    const offline: number[] = [];
    const watches = clients.map((client, i) => {
      const watch = client.watch();
      void (async () => {
        for (;;) {
          const event = await watch.recv().catch(() => undefined);
          if (event === undefined) return;
          if (event.agent?.id === daemon.agentId && event.agent.status === AgentStatus.OFFLINE) offline.push(i);
        }
      })();
      return watch;
    });
    const { agent } = await clients[0]!.register({ hostname: "before-leader-kill", ipAddress: "10.0.4.1", port: 11434 });
    const leader = await etcd.leader();
    await leader.kill();
    const killedAt = Date.now();
    let backAfterMs: number | undefined;
    while (backAfterMs === undefined) {
      try {
        await clients[1]!.register({ hostname: "after-leader-kill", ipAddress: "10.0.4.2", port: 11434 });
        backAfterMs = Date.now() - killedAt;
      } catch (error) {
        if (Date.now() - killedAt > 20_000) throw error;
        await wait(100);
      }
    }
    await wait(Math.max(0, 3 * TIMEOUT_MS - (Date.now() - killedAt)));
    for (const watch of watches) watch.cancel();
    console.log(`etcd leader ${leader.name} killed: writes back after ${backAfterMs} ms; OFFLINE events: ${offline.length}`);
    expect(offline).toEqual([]);
    for (const client of clients) {
      expect((await client.getAgent(daemon.agentId)).agent?.status).toBe(AgentStatus.ONLINE);
      expect((await client.getAgent(agent?.id ?? "")).agent?.id).toBe(agent?.id);
    }
  }, 60_000);
});
