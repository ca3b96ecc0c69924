// Small builders for the store tests: agent records and temp data directories.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { v4 } from "uuid";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import type { Inventory } from "../../src/registry/inventory.js";
import type { StoreObserver } from "../../src/registry/store.js";

export const PROTOTYPE_FILE = new URL("../fixtures/prototype-agents.json", import.meta.url);

/** One agent as the Rust prototype wrote it in agents.json (chrono's nanoseconds included). */
export const PROTOTYPE_ROW: Readonly<Record<string, unknown>> = {
  id: "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48",
  hostname: "gpu-node-01",
  ip_address: "10.0.0.11",
  port: 11434,
  ollama_version: "0.1.32",
  status: "Online",
  last_heartbeat: "2024-05-01T12:00:00.123456789Z",
  registered_at: "2024-04-30T08:15:42Z",
};

/** A node's inventory: two GPUs (one reporting [N/A] figures) and two models, one of them loaded. */
export function anInventory(): Inventory {
  return {
    gpus: [
      {
        index: 0,
        uuid: "GPU-5f0e8e5a-1c2b-4d7e-9a10-3b6c2d1e0f11",
        name: "NVIDIA A100-SXM4-80GB",
        memoryTotalBytes: 81920 * 2 ** 20,
        memoryUsedBytes: 31744 * 2 ** 20,
        utilizationPercent: 42,
        temperatureCelsius: 55,
      },
      { index: 1, uuid: "GPU-7a1d2c3b-4e5f-6a7b-8c9d-0e1f2a3b4c5d", name: "NVIDIA GH200 480GB", memoryTotalBytes: 97871 * 2 ** 20 },
    ],
    models: [
      { name: "llama3.1:8b", digest: "sha256:46e0c10c039e", sizeBytes: 4_920_753_328, loaded: true, vramBytes: 6_012_954_624, expiresAt: Date.parse("2024-05-01T12:05:00Z") },
      { name: "qwen2.5:72b", digest: "sha256:424bad2cc13f", sizeBytes: 47_415_724_719, loaded: false, vramBytes: 0 },
    ],
  };
}

export function anAgent(overrides: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id: v4() as AgentId,
    hostname: "gpu-node-01",
    ipAddress: "10.0.0.11",
    port: 11434,
    ollamaVersion: "0.1.32",
    status: "online",
    lastHeartbeat: Date.parse("2024-05-01T12:00:00.123Z"),
    registeredAt: Date.parse("2024-04-30T08:15:42.987Z"),
    labels: {},
    draining: false,
    streamConnected: false,
    livenessHeld: false,
    ...overrides,
  };
}

/** Temp directories made by one test file; `removeAll` in afterEach. */
export class TempDirs {
  private readonly made: string[] = [];

  async make(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "agent-registry-store-"));
    this.made.push(dir);
    return dir;
  }

  async removeAll(): Promise<void> {
    for (const dir of this.made.splice(0)) await rm(dir, { recursive: true, force: true });
  }
}

/** A store observer that counts writes, as the server's metrics do. */
export class WriteCounter implements StoreObserver {
  ok = 0;
  failed = 0;
  bytes = 0;
  /** Whether the last write succeeded; undefined before the first. */
  lastOk: boolean | undefined;

  written(outcome: { readonly ok: boolean; readonly bytes: number }): void {
    if (outcome.ok) this.ok++;
    else this.failed++;
    this.bytes += outcome.bytes;
    this.lastOk = outcome.ok;
  }
}
