import { describe, expect, it } from "vitest";
import { AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { agentAddress, formatAge, formatAgentTable, formatLabels, formatStatus, formatTime } from "../../src/cli/agent-table.js";
import { NOW, agent, secondsAgo } from "./agent-builders.js";

describe("ages", () => {
  it.each([
    { seconds: 0, age: "0s ago" },
    { seconds: 4, age: "4s ago" },
    { seconds: 59.9, age: "59s ago" },
    { seconds: 60, age: "1m ago" },
    { seconds: 3 * 60 + 59, age: "3m ago" },
    { seconds: 2 * 3600 + 59 * 60, age: "2h ago" },
    { seconds: 3 * 86_400 + 5, age: "3d ago" },
  ])("shows $seconds s as $age", ({ seconds, age }) => {
    expect(formatAge(secondsAgo(seconds), NOW)).toBe(age);
  });

  it("shows a missing time as never", () => {
    expect(formatAge(undefined, NOW)).toBe("never");
  });

  it("shows a time ahead of the local clock (skew) as 0s ago, not a negative age", () => {
    expect(formatAge(secondsAgo(-5), NOW)).toBe("0s ago");
  });
});

describe("cells", () => {
  it("joins labels as k=v pairs sorted by key, the selector syntax", () => {
    expect(formatLabels({ zone: "eu", gpu: "a100" })).toBe("gpu=a100,zone=eu");
  });

  it("shows no labels as an empty string", () => {
    expect(formatLabels({})).toBe("");
  });

  it("names the status without its enum prefix, adding DRAINING for a draining node", () => {
    expect(formatStatus({ status: AgentStatus.ONLINE, draining: false, livenessHeld: false })).toBe("ONLINE");
    expect(formatStatus({ status: AgentStatus.OFFLINE, draining: true, livenessHeld: false })).toBe("OFFLINE,DRAINING");
  });

  it("adds HELD for a node the offline guard keeps ONLINE past its timeout", () => {
    expect(formatStatus({ status: AgentStatus.ONLINE, draining: false, livenessHeld: true })).toBe("ONLINE,HELD");
    expect(formatStatus({ status: AgentStatus.ONLINE, draining: true, livenessHeld: true })).toBe("ONLINE,HELD,DRAINING");
  });

  it("shows a status number this build does not know as the number", () => {
    expect(formatStatus({ status: 7 as AgentStatus, draining: false, livenessHeld: false })).toBe("7");
  });

  it("brackets IPv6 addresses before the port", () => {
    expect(agentAddress({ ipAddress: "10.0.0.1", port: 11434 })).toBe("10.0.0.1:11434");
    expect(agentAddress({ ipAddress: "fd00::1", port: 11434 })).toBe("[fd00::1]:11434");
  });

  it("writes times as RFC 3339 UTC to the second", () => {
    expect(formatTime(NOW + 456)).toBe("2026-11-27T01:02:03Z");
  });
});

describe("the list table", () => {
  it("has a header and one row per agent in the order given, columns aligned by 3 spaces", () => {
    const table = formatAgentTable(
      [
        agent({ labels: { zone: "eu", gpu: "a100" } }),
        agent({
          id: "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48",
          hostname: "gpu-long-name-02",
          ipAddress: "10.0.0.12",
          ollamaVersion: "0.5.12",
          status: AgentStatus.OFFLINE,
          lastHeartbeat: secondsAgo(3 * 60),
        }),
      ],
      NOW,
    );
    expect(table).toBe(
      [
        "HOSTNAME           ID                                     ADDRESS           VERSION   STATUS    LAST BEAT   GPUS   MODELS   LABELS",
        "gpu-01             3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30   10.0.0.1:11434    0.5.7     ONLINE    4s ago      -      -        gpu=a100,zone=eu",
        "gpu-long-name-02   9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48   10.0.0.12:11434   0.5.12    OFFLINE   3m ago      -      -        gpu=a100",
        "",
      ].join("\n"),
    );
  });

  it("shows empty cells as a dash and a missing last beat as never", () => {
    const [, row] = formatAgentTable([agent({ ollamaVersion: "", labels: {}, lastHeartbeat: undefined })], NOW).split("\n");
    expect(row?.split(/ {3,}/)).toEqual(["gpu-01", "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30", "10.0.0.1:11434", "-", "ONLINE", "never", "-", "-", "-"]);
  });

  it("shows GPUs by kind with memory used/total in GiB, and models loaded first, marked *, at most three", () => {
    const gpu = (name: string, usedGib: number, totalGib?: number) => ({
      name,
      memoryUsedBytes: BigInt(usedGib) * 2n ** 30n,
      memoryTotalBytes: totalGib === undefined ? undefined : BigInt(totalGib) * 2n ** 30n,
    });
    const model = (name: string, loaded = false) => ({ name, loaded });
    const row = (fields: Parameters<typeof agent>[0]) => formatAgentTable([agent({ labels: {}, ...fields })], NOW).split("\n")[1]?.split(/ {3,}/);

    expect(row({ gpus: [gpu("NVIDIA A100-SXM4-80GB", 31, 80), gpu("NVIDIA A100-SXM4-80GB", 0, 80)], models: [model("qwen2.5:72b"), model("llama3.1:8b", true)] })?.slice(6, 8)).toEqual([
      "2×A100 31/160G",
      "llama3.1:8b*,qwen2.5:72b",
    ]);
    expect(row({ gpus: [gpu("NVIDIA GH200 480GB", 0)], models: ["a", "b", "c", "d", "e"].map((name) => model(name)) })?.slice(6, 8)).toEqual(["GH200", "a,b,c,+2"]);
  });

  it("adds UNREACHABLE to the status of a node the probe cannot reach", () => {
    expect(formatStatus({ status: AgentStatus.ONLINE, draining: false, livenessHeld: false, reachable: false })).toBe("ONLINE,UNREACHABLE");
  });

  it("leaves no trailing spaces", () => {
    const table = formatAgentTable([agent({ labels: {} }), agent({ labels: { a: "b" } })], NOW);
    expect(table.split("\n").filter((line) => line.endsWith(" "))).toEqual([]);
  });
});
