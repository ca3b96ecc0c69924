// Soak (long run only: SOAK_MINUTES, set by `npm run test:chaos`): 1 000 agents beating for minutes.
// The server's RSS stays flat, its open file descriptors do not grow, and the file does not grow
// beyond the data.

import { readFile, readdir, rm, stat } from "node:fs/promises";
import { afterEach, expect, it } from "vitest";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { SimFleet } from "../support/sim-fleet.js";
import { storeFile } from "../support/stored-agents.js";
import { makeDataDir, testStore } from "../support/test-server.js";

const MINUTES = Number(process.env["SOAK_MINUTES"] ?? 0);
const FLEET = 1000;

let dataDir: string | undefined;
let server: ServerProcess | undefined;
let fleet: SimFleet | undefined;

afterEach(async () => {
  fleet?.stop();
  server?.child.kill("SIGKILL");
  await server?.exited;
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** The store's files: agents.json, or registry.db and its write-ahead log. */
const storeFiles = (dataDir: string): string[] =>
  testStore() === "json" ? [storeFile(dataDir)] : [storeFile(dataDir), `${storeFile(dataDir)}-wal`];

/** SQLite's WAL grows to its checkpoint size (1 000 pages of 4 KB) before it is reused: allowed on top. */
const WAL_ALLOWANCE = testStore() === "sqlite" ? 4.5 * 1024 * 1024 : 0;

async function sample(pid: number, files: readonly string[]): Promise<{ rssKb: number; fds: number; fileBytes: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  let fileBytes = 0;
  for (const file of files) fileBytes += await stat(file).then((info) => info.size, () => 0);
  return {
    rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]),
    fds: (await readdir(`/proc/${pid}/fd`)).length,
    fileBytes,
  };
}

it.runIf(MINUTES > 0)(`holds ${FLEET} agents for ${MINUTES} min with flat memory, descriptors and file size`, async () => {
  dataDir = await makeDataDir();
  server = await startServerProcess(dataDir, { HEARTBEAT_INTERVAL: "1", AGENT_TIMEOUT: "3" });
  const pid = server.child.pid as number;
  fleet = new SimFleet({ address: server.grpcAddress, size: FLEET, connections: 16 });
  fleet.start();
  await expect.poll(() => fleet!.stats.beatsAcked, { timeout: 60_000, interval: 500 }).toBeGreaterThan(FLEET * 5);
  const file = storeFiles(dataDir);
  // Warm-up over: take the baseline after a minute of steady beats (or a tenth of the run).
  await new Promise((resolve) => setTimeout(resolve, Math.min(60_000, MINUTES * 6_000)));
  const start = await sample(pid, file);
  const samples = [start];
  const end = Date.now() + MINUTES * 60_000;
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    samples.push(await sample(pid, file));
  }
  const last = samples.at(-1)!;
  console.log(
    `soak: ${MINUTES} min, ${FLEET} agents, ${fleet.stats.beatsAcked} beats acked; RSS ${start.rssKb} -> ${last.rssKb} KB ` +
      `(max ${Math.max(...samples.map((s) => s.rssKb))}), fds ${start.fds} -> ${last.fds}, file ${start.fileBytes} -> ${last.fileBytes} bytes`,
  );
  expect(last.rssKb).toBeLessThan(start.rssKb * 1.25);
  expect(last.fds).toBeLessThanOrEqual(start.fds + 5);
  expect(Math.abs(last.fileBytes - start.fileBytes)).toBeLessThan(start.fileBytes * 0.05 + WAL_ALLOWANCE);
  expect([...fleet.stats.errors.keys()]).toEqual([]);
}, (MINUTES + 3) * 60_000);
