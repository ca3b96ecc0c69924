// Disk trouble: with the data directory read-only, full, or agents.json replaced by a directory, writes
// fail with a clear error, health turns NOT_SERVING, no Register is acknowledged that was not written,
// and the server recovers by itself once the disk is writable again.
// Read-only and full disks use a small tmpfs mounted on the data directory (needs root, as CI runs).

import { execFileSync } from "node:child_process";
import { mkdir, readFile, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { decodeAgents } from "../../src/store/agents-file-format.js";
import { type RegistryClient, RpcError, grpcClient } from "../support/clients.js";
import { type TestServer, makeDataDir, startTestServer } from "../support/test-server.js";

const mounts: string[] = [];
let server: TestServer | undefined;
let client: RegistryClient | undefined;

afterEach(async () => {
  client?.close();
  for (const dir of mounts) execFileSync("mount", ["-o", "remount,rw", dir]);
  await server?.close();
  for (const dir of mounts.splice(0)) execFileSync("umount", [dir]);
  if (server !== undefined) await rm(server.dataDir, { recursive: true, force: true });
  server = undefined;
});

function canMount(): boolean {
  try {
    const probe = execFileSync("mktemp", ["-d"]).toString().trim();
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe]);
    return true;
  } catch {
    return false; // not root, or no mount in this sandbox: the tmpfs cases are skipped
  }
}

async function startOnTmpfs(sizeKb: number): Promise<TestServer> {
  const dataDir = await makeDataDir();
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k`, "tmpfs", dataDir]);
  mounts.push(dataDir);
  return startTestServer({ dataDir });
}

async function registerError(request: Parameters<RegistryClient["register"]>[0]): Promise<RpcError> {
  const error = await client!.register(request).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(RpcError);
  return error as RpcError;
}

async function fileIds(file: string): Promise<string[]> {
  return decodeAgents(await readFile(file, "utf8")).map((agent) => agent.record.id);
}

async function expectRecovered(running: TestServer, ids: string[]): Promise<void> {
  await expect.poll(() => running.serving.notReadyReason, { timeout: 10_000, interval: 50 }).toBeUndefined();
  expect(await fileIds(running.dataFile)).toEqual(expect.arrayContaining(ids));
}

/**
 * The registration refused while the disk was broken was never acknowledged, so it is not there; the
 * node's retry (same id) is, in the registry and in the file.
 */
async function expectOnlyAfterRetry(refusedId: string, earlierId: string): Promise<void> {
  expect((await client!.listAgents()).agents.map((agent) => agent.id)).toEqual([earlierId]);
  await client!.register({ agentId: refusedId, hostname: "gpu-2" });
  expect((await client!.listAgents()).agents.map((agent) => agent.id).sort()).toEqual([earlierId, refusedId].sort());
  expect((await fileIds(server!.dataFile)).sort()).toEqual([earlierId, refusedId].sort());
}

describe("when the store cannot write", () => {
  it("answers UNAVAILABLE naming the file while agents.json is a directory, and recovers by itself", async () => {
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

  it.skipIf(!canMount())("answers UNAVAILABLE on a read-only data directory and recovers when it is writable again", async () => {
    server = await startOnTmpfs(1024);
    client = grpcClient(server.grpcAddress);
    const first = await client.register({ hostname: "gpu-1" });
    execFileSync("mount", ["-o", "remount,ro", server.dataDir]);

    const error = await registerError({ agentId: "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c31", hostname: "gpu-2" });
    expect(error.code).toBe(Code.Unavailable);
    expect(error.message).toMatch(/read-only file system/i);
    expect(await fileIds(server.dataFile)).toEqual([first.agent?.id]);
    expect(server.serving.notReadyReason).toBeDefined();

    execFileSync("mount", ["-o", "remount,rw", server.dataDir]);
    await expectRecovered(server, [first.agent?.id ?? ""]);
    await expectOnlyAfterRetry("3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c31", first.agent?.id ?? "");
  });

  it.skipIf(!canMount())("answers UNAVAILABLE on a full disk, keeps the last good file, and recovers when space is freed", async () => {
    server = await startOnTmpfs(256);
    client = grpcClient(server.grpcAddress);
    const first = await client.register({ hostname: "gpu-1" });
    // Something else fills the disk.
    const filler = join(server.dataDir, "filler");
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=4k"], { stdio: "ignore" });
    } catch {
      // dd stops with "no space left on device": that is the point
    }

    const error = await registerError({ agentId: "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c32", hostname: "gpu-2" });
    expect(error.code).toBe(Code.Unavailable);
    expect(error.message).toMatch(/no space left/i);
    expect(await fileIds(server.dataFile)).toEqual([first.agent?.id]);
    expect(server.serving.notReadyReason).toBeDefined();

    await rm(filler);
    await expectRecovered(server, [first.agent?.id ?? ""]);
    await expectOnlyAfterRetry("3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c32", first.agent?.id ?? "");
  });
});
