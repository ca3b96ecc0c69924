// The built daemon's inventory end to end: `agent-registry agent` with a fake nvidia-smi on PATH and a fake
// Ollama reports its GPUs and models to a real server, and a model loaded later reaches watchers as an
// UPDATED event; `agent-registry inventory` prints the same as JSON and exits.

import { afterEach, expect, it } from "vitest";
import { WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { type AgentProcess, startAgentProcess } from "../support/agent-process.js";
import { type RegistryClient, grpcClient } from "../support/clients.js";
import { type FakeNvidiaSmi, fakeNvidiaSmi } from "../support/fake-nvidia-smi.js";
import { type FakeOllama, ollamaLoaded, ollamaTag, startFakeOllama } from "../support/fake-ollama.js";
import { runCliToExit } from "../support/server-process.js";
import { type TestServer, makeDataDir, startTestServer } from "../support/test-server.js";

const cleanups: Array<() => Promise<unknown> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(): Promise<{ ollama: FakeOllama; smi: FakeNvidiaSmi; dataDir: string }> {
  const ollama = await startFakeOllama({ tags: [ollamaTag("llama3.1:8b"), ollamaTag("qwen2.5:72b", 47_415_724_719)] });
  cleanups.push(() => ollama.close());
  const smi = await fakeNvidiaSmi();
  cleanups.push(() => smi.remove());
  return { ollama, smi, dataDir: await makeDataDir() };
}

it("reports the node's GPUs and models with Register, and a model loaded later as an UPDATED change", async () => {
  const { ollama, smi, dataDir } = await node();
  const server: TestServer = await startTestServer({ heartbeatIntervalMs: 200, agentTimeoutMs: 1000 });
  cleanups.push(() => server.dispose());
  const client: RegistryClient = grpcClient(server.grpcAddress);
  cleanups.push(() => client.close());
  const daemon: AgentProcess = await startAgentProcess(["--hostname", "gpu-inv"], {
    PATH: smi.path,
    REGISTRY_ADDR: server.grpcAddress,
    OLLAMA_URL: ollama.url,
    REGISTRY_DATA_DIR: dataDir,
  });
  cleanups.push(async () => {
    daemon.child.kill("SIGKILL");
    await daemon.exited;
  });
  const watch = client.watch({});
  cleanups.push(() => watch.cancel());
  const first = await watch.recv();

  expect(first.agent?.gpus.map((gpu) => [gpu.name, gpu.memoryTotalBytes])).toEqual([
    ["NVIDIA A100-SXM4-80GB", 81920n * 2n ** 20n],
    ["NVIDIA A100-SXM4-80GB", 81920n * 2n ** 20n],
    ["NVIDIA GH200 480GB", undefined],
  ]);
  expect(first.agent?.models.map((model) => [model.name, model.loaded])).toEqual([
    ["llama3.1:8b", false],
    ["qwen2.5:72b", false],
  ]);

  ollama.setModels({ ps: [ollamaLoaded("llama3.1:8b")] });
  let event = await watch.recv();
  while (event.agent?.models[0]?.loaded !== true) event = await watch.recv();

  expect(WatchEventType[event.type]).toBe("UPDATED");
  expect(event.agent.models[0]?.vramBytes).toBe(6_012_954_624n);
  expect((await client.listAgents({ loadedModel: "llama3.1:8b" })).agents.map((agent) => agent.hostname)).toEqual(["gpu-inv"]);
});

it("prints with `agent-registry inventory` what the daemon would report, as JSON, and exits 0", async () => {
  const { ollama, smi } = await node();
  ollama.setModels({ ps: [ollamaLoaded("llama3.1:8b")] });

  const result = await runCliToExit(["inventory"], { PATH: smi.path, HOME: process.env["HOME"], OLLAMA_URL: ollama.url }, 10_000);

  expect(result.code).toBe(0);
  const printed = JSON.parse(result.stdout) as { gpus: Array<Record<string, unknown>>; models: Array<Record<string, unknown>> };
  expect(printed.gpus).toHaveLength(3);
  expect(printed.gpus[0]).toEqual({
    index: 0,
    uuid: "GPU-5f0e8e5a-1c2b-4d7e-9a10-3b6c2d1e0f11",
    name: "NVIDIA A100-SXM4-80GB",
    memoryTotalBytes: String(81920 * 2 ** 20),
    memoryUsedBytes: String(31744 * 2 ** 20),
    utilizationPercent: 42,
    temperatureCelsius: 55,
  });
  expect(printed.gpus[2]).not.toHaveProperty("memoryTotalBytes");
  expect(printed.models.map((model) => [model["name"], model["loaded"]])).toEqual([
    ["llama3.1:8b", true],
    ["qwen2.5:72b", false],
  ]);
});
