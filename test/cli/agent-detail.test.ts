import { describe, expect, it } from "vitest";
import { formatAgentDetail } from "../../src/cli/agent-detail.js";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { NOW, agent } from "./agent-builders.js";

describe("get's detail view", () => {
  it("shows every field, one per line, times with their age", () => {
    expect(formatAgentDetail(agent({ labels: { zone: "eu", gpu: "a100" }, streamConnected: true, missedHeartbeats: 1 }), NOW)).toBe(
      [
        "ID:                 3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30",
        "Hostname:           gpu-01",
        "Address:            10.0.0.1:11434",
        "Ollama version:     0.5.7",
        "Status:             ONLINE",
        "Liveness held:      no",
        "Draining:           no",
        "Heartbeat stream:   connected",
        "Last beat:          2026-11-27T01:01:59Z (4s ago)",
        "Missed beats:       1",
        "Registered:         2026-11-26T23:02:03Z (2h ago)",
        "Labels:             gpu=a100,zone=eu",
        "Reachable:          yes",
        "Inventory:          never",
        "GPUs:               none reported",
        "Models:             none reported",
        "",
      ].join("\n"),
    );
  });

  it("shows missing values as a dash and a missing time as never", () => {
    const detail = formatAgentDetail(agent({ ollamaVersion: "", labels: {}, lastHeartbeat: undefined, draining: true }), NOW);
    expect(detail).toContain("Ollama version:     -\n");
    expect(detail).toContain("Labels:             -\n");
    expect(detail).toContain("Last beat:          never\n");
    expect(detail).toContain("Draining:           yes\n");
  });

  it("shows every GPU and model on a line of its own, [N/A] figures as n/a, and why a node is unreachable", () => {
    const detail = formatAgentDetail(
      agent({
        reachable: false,
        statusMessage: "GET http://10.0.0.1:11434/api/version failed 3 times in a row: ECONNREFUSED",
        inventoryUpdatedAt: timestampFromMs(NOW - 1000),
        gpus: [
          { index: 0, uuid: "GPU-5f0e", name: "NVIDIA A100-SXM4-80GB", memoryTotalBytes: 81920n * 2n ** 20n, memoryUsedBytes: 31744n * 2n ** 20n, utilizationPercent: 42, temperatureCelsius: 55 },
          { index: 1, uuid: "GPU-7a1d", name: "NVIDIA GH200 480GB" },
        ],
        models: [
          { name: "llama3.1:8b", sizeBytes: 4_920_753_328n, loaded: true, vramBytes: 6_012_954_624n, expiresAt: timestampFromMs(NOW + 300_000) },
          { name: "qwen2.5:72b", sizeBytes: 47_415_724_719n },
        ],
      }),
      NOW,
    );

    expect(detail).toContain(
      [
        "Reachable:          no: GET http://10.0.0.1:11434/api/version failed 3 times in a row: ECONNREFUSED",
        "Inventory:          2026-11-27T01:02:02Z",
        "GPUs:               0: NVIDIA A100-SXM4-80GB (GPU-5f0e), 31744/81920 MiB, 42% util, 55 °C",
        "                    1: NVIDIA GH200 480GB (GPU-7a1d), memory n/a, util n/a, temp n/a",
        "Models:             llama3.1:8b 4.6 GiB, loaded (5.6 GiB VRAM, until 2026-11-27T01:07:03Z)",
        "                    qwen2.5:72b 44.2 GiB",
        "",
      ].join("\n"),
    );
  });

  it("says a held node is to be treated as suspect", () => {
    expect(formatAgentDetail(agent({ livenessHeld: true }), NOW)).toContain(
      "Liveness held:      yes: past its timeout, kept ONLINE by the offline guard; treat as suspect\n",
    );
  });
});
