// A step of the server's wall clock by 10 minutes, forward and back, on a real server process: libfaketime
// (Debian's faketime) moves what Date.now() reads while the monotonic clock runs on
// (FAKETIME_DONT_FAKE_MONOTONIC=1), as NTP or a resumed VM would. No beating node turns OFFLINE, and a node
// that falls silent just before or just after the step is still OFFLINE within 1 s of its timeout.

import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { type BeatStream, type RegistryClient, connectClient, grpcClient } from "../support/clients.js";
import { debianPackage } from "../support/debian-package.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { makeDataDir } from "../support/test-server.js";

const LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
const TIMEOUT_MS = 600;
const STEP_S = 600;

const library = debianPackage(LIBFAKETIME, "faketime");
if (library === undefined) console.warn(`wall-clock step test skipped: ${LIBFAKETIME} is missing and faketime could not be installed with apt-get`);

const id = (n: number): string => `3f2b8c1e-6d4a-4f7e-9b1c-${String(n).padStart(12, "0")}`;

let server: ServerProcess | undefined;
const clients: RegistryClient[] = [];
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  server?.child.kill("SIGKILL");
  if (server !== undefined) await server.exited;
  server = undefined;
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe.skipIf(library === undefined).each([
  ["forward", STEP_S],
  ["back", -STEP_S],
])("a wall-clock step %s by 10 minutes", (_, step) => {
  it("turns no beating node OFFLINE, and silent ones still on time", async () => {
    const dataDir = await makeDataDir();
    const clockFile = join(dataDir, "faketime");
    await writeFile(clockFile, "+0\n");
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    server = await startServerProcess(dataDir, {
      LD_PRELOAD: library as string,
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_NO_CACHE: "1",
      HEARTBEAT_INTERVAL: "0.2",
      AGENT_TIMEOUT: String(TIMEOUT_MS / 1000),
    });
    const grpc = grpcClient(server.grpcAddress);
    const connect = connectClient(server.httpUrl);
    clients.push(grpc, connect);

    // A beats throughout; B falls silent just before the step, C just after.
    const [a, b, c] = [id(1), id(2), id(3)];
    const streams = new Map<string, BeatStream>();
    const lastAck = new Map<string, number>();
    let seq = 1n;
    for (const agentId of [a, b, c]) {
      await grpc.register({ agentId, hostname: `gpu-${agentId.slice(-1)}` });
      const stream = grpc.heartbeat();
      streams.set(agentId, stream);
      stream.send({ agentId, seq: seq++ });
      void (async () => {
        for (;;) {
          await stream.recv();
          lastAck.set(agentId, performance.now());
        }
      })().catch(() => undefined);
    }
    const beating = new Set([a, b, c]);
    const beats = setInterval(() => {
      for (const agentId of beating) streams.get(agentId)?.send({ seq: seq++ });
    }, 200);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      beating.delete(b);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await writeFile(clockFile, `${step > 0 ? "+" : ""}${step}\n`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      beating.delete(c);

      const offlineAfter = new Map<string, number>();
      const watchedUntil = performance.now() + 3 * TIMEOUT_MS + 1500;
      while (performance.now() < watchedUntil) {
        const { agents } = await connect.listAgents();
        for (const agent of agents) {
          if (agent.id === a) expect(agent.status, "the beating node").toBe(AgentStatus.ONLINE);
          else if (agent.status === AgentStatus.OFFLINE && !offlineAfter.has(agent.id)) {
            offlineAfter.set(agent.id, performance.now() - (lastAck.get(agent.id) ?? 0));
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect([...offlineAfter.keys()].sort()).toEqual([b, c]);
      for (const late of offlineAfter.values()) {
        expect(late).toBeGreaterThan(TIMEOUT_MS - 50);
        expect(late).toBeLessThan(TIMEOUT_MS + 1000);
      }
      // Wall time is what people read: the beating node's last_heartbeat follows the stepped clock.
      const shown = (await grpc.getAgent(a)).agent?.lastHeartbeat;
      const shownMs = Number(shown?.seconds ?? 0n) * 1000;
      expect(Math.abs(shownMs - (Date.now() + step * 1000))).toBeLessThan(5000);
    } finally {
      clearInterval(beats);
    }
  }, 30_000);
});
