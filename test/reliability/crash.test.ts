// Crash at any instant: registrations run at full speed while the server is killed with SIGKILL at random
// instants, again and again. Every acknowledged Register must survive, and the store's file must always load.
// CHAOS_CRASHES sets the number of kills (20 here, 200 in `npm run test:chaos`).

import { rm } from "node:fs/promises";
import { afterEach, expect, it } from "vitest";
import { grpcClient } from "../support/clients.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { storedAgents } from "../support/stored-agents.js";
import { makeDataDir } from "../support/test-server.js";

const CRASHES = Number(process.env["CHAOS_CRASHES"] ?? 20);
const CALLERS = 16;

let dataDir: string | undefined;
let server: ServerProcess | undefined;

afterEach(async () => {
  server?.child.kill("SIGKILL");
  await server?.exited;
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

it(`keeps every acknowledged registration through ${CRASHES} kill -9s at random instants`, async () => {
  dataDir = await makeDataDir();
  const acknowledged = new Set<string>();
  let attempted = 0;
  for (let crash = 0; crash < CRASHES; crash++) {
    server = await startServerProcess(dataDir);
    const client = grpcClient(server.grpcAddress);
    let killed = false;
    // Callers register back to back until the kill; each ack is recorded the moment it arrives.
    const callers = Array.from({ length: CALLERS }, async (_, caller) => {
      for (let n = 0; !killed; n++) {
        attempted++;
        try {
          const { agent } = await client.register({ hostname: `crash-${crash}-${caller}-${n}` });
          acknowledged.add(agent?.id ?? "");
        } catch {
          return; // the server died under this call: unacknowledged, so it may be lost
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 150));
    killed = true;
    server.child.kill("SIGKILL");
    await server.exited;
    await Promise.all(callers);
    client.close();
    // Whatever instant the kill hit, the file is whole.
    await expect(storedAgents(dataDir)).resolves.toBeInstanceOf(Array);
  }

  server = await startServerProcess(dataDir);
  const client = grpcClient(server.grpcAddress);
  const { agents } = await client.listAgents();
  client.close();
  const stored = new Set(agents.map((agent) => agent.id));
  const lost = [...acknowledged].filter((id) => !stored.has(id));
  console.log(`crashes: ${CRASHES}, registrations attempted: ${attempted}, acknowledged: ${acknowledged.size}, lost: ${lost.length}`);
  expect(acknowledged.size).toBeGreaterThan(CRASHES);
  expect(lost).toEqual([]);
}, 60_000 + CRASHES * 3000);
