// Disk trouble: with the store's file replaced by a directory, the data directory read-only, or its disk
// full, writes fail with a clear error, health turns NOT_SERVING, no Register is acknowledged that was not
// written, and the server recovers by itself once the disk takes writes again. Read-only and full disks use
// a small tmpfs mounted on the data directory (needs root, as CI runs). On sqlite, a file system whose files
// are open for writing cannot be remounted read-only, and a replaced file goes unnoticed by SQLite's open
// descriptors: a full disk is how its writes fail.

import { mkdir, rm, rmdir } from "node:fs/promises";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { type RegistryClient, RpcError, grpcClient } from "../support/clients.js";
import { storedAgents } from "../support/stored-agents.js";
import { type TestServer, startTestServer, testStore } from "../support/test-server.js";
import { Tmpfs, canMount } from "../support/tmpfs.js";

const mounts: Tmpfs[] = [];
let server: TestServer | undefined;
let client: RegistryClient | undefined;

afterEach(async () => {
  client?.close();
  for (const mount of mounts) mount.writable();
  await server?.close();
  for (const mount of mounts.splice(0)) await mount.unmount();
  if (server !== undefined) await rm(server.dataDir, { recursive: true, force: true });
  server = undefined;
});

async function startOnTmpfs(sizeKb: number): Promise<Tmpfs> {
  const mount = await Tmpfs.mount(sizeKb);
  mounts.push(mount);
  server = await startTestServer({ dataDir: mount.dir });
  return mount;
}

async function registerError(request: Parameters<RegistryClient["register"]>[0]): Promise<RpcError> {
  const error = await client!.register(request).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(RpcError);
  return error as RpcError;
}

const idsOnDisk = async (running: TestServer): Promise<string[]> => (await storedAgents(running.dataDir)).map((agent) => agent.id);

async function expectRecovered(running: TestServer, ids: string[]): Promise<void> {
  await expect.poll(() => running.serving.notReadyReason, { timeout: 10_000, interval: 50 }).toBeUndefined();
  expect(await idsOnDisk(running)).toEqual(expect.arrayContaining(ids));
}

/**
 * The registration refused while the disk was broken was never acknowledged, so it is not there; the
 * node's retry (same id) is, in the registry and on disk.
 */
async function expectOnlyAfterRetry(refusedId: string, earlierId: string): Promise<void> {
  expect((await client!.listAgents()).agents.map((agent) => agent.id)).toEqual([earlierId]);
  await client!.register({ agentId: refusedId, hostname: "gpu-2" });
  expect((await client!.listAgents()).agents.map((agent) => agent.id).sort()).toEqual([earlierId, refusedId].sort());
  expect((await idsOnDisk(server!)).sort()).toEqual([earlierId, refusedId].sort());
}

describe("when the store cannot write", () => {
  it.runIf(testStore() === "json")("answers UNAVAILABLE naming the file while agents.json is a directory, and recovers by itself", async () => {
    server = await startTestServer();
    client = grpcClient(server.grpcAddress);
    const first = await client.register({ hostname: "gpu-1" });
    await rm(server.dataFile);
    await mkdir(server.dataFile);

    const error = await registerError({ agentId: "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30", hostname: "gpu-2" });
    expect(error.code).toBe(Code.Unavailable);
    expect(error.message).toContain(server.dataFile);
    expect(server.serving.notReadyReason).toContain("cannot write");
    expect((await fetch(`${server.httpUrl}/readyz`)).status).toBe(503);

    await rmdir(server.dataFile);
    // No new request: the store's own retry writes the state again.
    await expectRecovered(server, [first.agent?.id ?? ""]);
    expect((await fetch(`${server.httpUrl}/readyz`)).status).toBe(200);
    await expectOnlyAfterRetry("3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30", first.agent?.id ?? "");
  });

  it.runIf(canMount && testStore() === "json")("answers UNAVAILABLE on a read-only data directory and recovers when it is writable again", async () => {
    const mount = await startOnTmpfs(1024);
    client = grpcClient(server!.grpcAddress);
    const first = await client.register({ hostname: "gpu-1" });
    mount.readOnly();

    const error = await registerError({ agentId: "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c31", hostname: "gpu-2" });
    expect(error.code).toBe(Code.Unavailable);
    expect(error.message).toMatch(/read-only file system/i);
    expect(await idsOnDisk(server!)).toEqual([first.agent?.id]);
    expect(server!.serving.notReadyReason).toBeDefined();

    mount.writable();
    await expectRecovered(server!, [first.agent?.id ?? ""]);
    await expectOnlyAfterRetry("3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c31", first.agent?.id ?? "");
  });

  it.runIf(canMount)("answers UNAVAILABLE on a full disk, keeps the last good state, and recovers when space is freed", async () => {
    const mount = await startOnTmpfs(testStore() === "json" ? 256 : 1024);
    client = grpcClient(server!.grpcAddress);
    const first = await client.register({ hostname: "gpu-1" });
    // Something else fills the disk.
    const filler = mount.fill();

    const error = await registerError({ agentId: "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c32", hostname: "gpu-2", labels: { padding: "x".repeat(200) } });
    expect(error.code).toBe(Code.Unavailable);
    expect(error.message).toContain(server!.dataFile);
    expect(error.message).toMatch(/no space left|disk is full/i);
    expect(await idsOnDisk(server!)).toEqual([first.agent?.id]);
    expect(server!.serving.notReadyReason).toBeDefined();

    await rm(filler);
    await expectRecovered(server!, [first.agent?.id ?? ""]);
    await expectOnlyAfterRetry("3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c32", first.agent?.id ?? "");
  });
});
