// What the daemon reports as its inventory: models from a fake Ollama's /api/tags and /api/ps, each problem
// logged once, and when an inventory is sent again (a routing change at once, fast figures at most once per
// inventory interval).

import { afterEach, describe, expect, it } from "vitest";
import { InventoryCollector } from "../../src/agent/inventory-collector.js";
import { InventoryReporter } from "../../src/agent/inventory-reporter.js";
import { readModels } from "../../src/agent/ollama-models.js";
import type { Log } from "../../src/common/log.js";
import { FakeClock } from "../support/fake-clock.js";
import { type FakeOllama, freePort, ollamaLoaded, ollamaTag, startFakeOllama } from "../support/fake-ollama.js";
import { anInventory } from "../store/agent-records.js";

const servers: FakeOllama[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function ollama(models: { tags?: object[]; ps?: object[] }): Promise<FakeOllama> {
  const server = await startFakeOllama(models);
  servers.push(server);
  return server;
}

function recordingLog(): { log: Log; warnings: string[] } {
  const warnings: string[] = [];
  const record = (_fields: object, message?: string): void => void warnings.push(message ?? "");
  const ignore = (): void => undefined;
  const log = { warn: record, info: ignore, debug: ignore, error: record, trace: ignore, fatal: record } as unknown as Log;
  return { log, warnings };
}

describe("reading models from Ollama", () => {
  it("lists installed models, marking those /api/ps shows loaded with their VRAM and expiry", async () => {
    const server = await ollama({ tags: [ollamaTag("llama3.1:8b"), ollamaTag("qwen2.5:72b", 47_415_724_719)], ps: [ollamaLoaded("llama3.1:8b")] });

    const { models, problem } = await readModels(server.url);

    expect(problem).toBeUndefined();
    expect(models).toEqual([
      { name: "llama3.1:8b", digest: "46e0c10c039e11", sizeBytes: 4_920_753_328, loaded: true, vramBytes: 6_012_954_624, expiresAt: Date.parse("2024-07-23T10:06:02.123Z") },
      { name: "qwen2.5:72b", digest: "46e0c10c039e11", sizeBytes: 47_415_724_719, loaded: false, vramBytes: 0, expiresAt: undefined },
    ]);
    expect(server.requests).toEqual(["GET /api/tags", "GET /api/ps"]);
  });

  it("says why when Ollama does not answer", async () => {
    const { models, problem } = await readModels(`http://127.0.0.1:${await freePort()}`);

    expect(models).toEqual([]);
    expect(problem).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/api\/tags failed: .*ECONNREFUSED/);
  });
});

describe("collecting the inventory", () => {
  it("warns once about a missing nvidia-smi, not at every collection, and still reports the models", async () => {
    const server = await ollama({ tags: [ollamaTag("llama3.1:8b")] });
    const { log, warnings } = recordingLog();
    const collector = new InventoryCollector({ ollamaUrl: server.url, log, nvidiaSmi: { command: "nvidia-smi-that-is-not-there" } });

    await collector.collect();
    const inventory = await collector.collect();

    expect(inventory.gpus).toEqual([]);
    expect(inventory.models.map((model) => model.name)).toEqual(["llama3.1:8b"]);
    expect(warnings).toEqual([expect.stringMatching(/nvidia-smi-that-is-not-there is not on PATH.*; no GPUs reported$/)]);
  });

  it("keeps the last models while Ollama does not answer", async () => {
    const server = await ollama({ tags: [ollamaTag("llama3.1:8b")] });
    const { log, warnings } = recordingLog();
    const collector = new InventoryCollector({ ollamaUrl: server.url, log, readGpus: () => Promise.resolve({ gpus: [], skipped: [] }) });
    await collector.collect();
    await server.close();
    servers.splice(0);

    const inventory = await collector.collect();

    expect(inventory.models.map((model) => model.name)).toEqual(["llama3.1:8b"]);
    expect(warnings).toEqual([expect.stringMatching(/api\/tags failed.*; models not refreshed$/)]);
  });
});

describe("when the inventory is reported again", () => {
  const busier = () => {
    const inventory = anInventory();
    return { ...inventory, gpus: inventory.gpus.map((gpu) => ({ ...gpu, utilizationPercent: 97 })) };
  };

  it("reports a model loaded or unloaded at once", () => {
    const reporter = new InventoryReporter(new FakeClock(), 60_000);
    reporter.offer(anInventory());
    const unloaded = { ...anInventory(), models: anInventory().models.map((model) => ({ ...model, loaded: false, vramBytes: 0 })) };

    expect(reporter.offer(unloaded)).toBe(true);
    expect(reporter.reported).toBe(unloaded);
  });

  it("reports utilisation alone at most once per inventory interval", () => {
    const clock = new FakeClock();
    const reporter = new InventoryReporter(clock, 60_000);
    const first = anInventory();
    reporter.offer(first);

    clock.advance(30_000);
    expect(reporter.offer(busier())).toBe(false);
    expect(reporter.reported).toBe(first);
    clock.advance(30_000);
    expect(reporter.offer(busier())).toBe(true);
  });

  it("sends nothing for a collection that is the same as the last one reported", () => {
    const clock = new FakeClock();
    const reporter = new InventoryReporter(clock, 60_000);
    reporter.offer(anInventory());
    clock.advance(120_000);

    expect(reporter.offer(anInventory())).toBe(false);
  });
});
