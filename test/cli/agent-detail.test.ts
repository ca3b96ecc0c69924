import { describe, expect, it } from "vitest";
import { formatAgentDetail } from "../../src/cli/agent-detail.js";
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

  it("says a held node is to be treated as suspect", () => {
    expect(formatAgentDetail(agent({ livenessHeld: true }), NOW)).toContain(
      "Liveness held:      yes: past its timeout, kept ONLINE by the offline guard; treat as suspect\n",
    );
  });
});
