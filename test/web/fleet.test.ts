// What the dashboard knows of the fleet, from watch events: ListAgents' order, changes in place, and a new
// snapshot (after a reconnect) that replaces what was known.

import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AgentSchema, AgentStatus, WatchAgentsResponseSchema, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { Fleet } from "../../web/src/fleet.js";
import { parseFilter } from "../../web/src/filter.js";
import { ageText } from "../../web/src/format.js";

const event = (type: WatchEventType, id: string, hostname: string, fields: { status?: AgentStatus; snapshot?: boolean; labels?: Record<string, string> } = {}) =>
  create(WatchAgentsResponseSchema, {
    type,
    snapshot: fields.snapshot ?? false,
    agent: create(AgentSchema, { id, hostname, status: fields.status ?? AgentStatus.ONLINE, labels: fields.labels ?? {}, ipAddress: "10.0.0.7", port: 11434 }),
  });

describe("the dashboard's fleet", () => {
  it("keeps the agents sorted by hostname, then id, and gives each as it is now", () => {
    const fleet = new Fleet();
    fleet.apply(event(WatchEventType.ADDED, "b", "gpu-2"));
    fleet.apply(event(WatchEventType.ADDED, "c", "gpu-1"));
    fleet.apply(event(WatchEventType.ADDED, "a", "gpu-2"));
    expect(fleet.inOrder().map((agent) => agent.id)).toEqual(["c", "a", "b"]);

    fleet.take();
    fleet.apply(event(WatchEventType.STATUS_CHANGED, "a", "gpu-2", { status: AgentStatus.OFFLINE }));
    expect(fleet.inOrder().map((agent) => agent.status)).toEqual([AgentStatus.ONLINE, AgentStatus.OFFLINE, AgentStatus.ONLINE]);
    expect(fleet.take()).toEqual({ changed: new Set(["a"]), removed: new Set(), reordered: false });
  });

  it("drops, once a new snapshot is complete, the agents it no longer names", () => {
    const fleet = new Fleet();
    fleet.apply(event(WatchEventType.ADDED, "a", "gpu-1"));
    fleet.apply(event(WatchEventType.ADDED, "b", "gpu-2"));
    fleet.take();

    fleet.beginSnapshot();
    fleet.apply(event(WatchEventType.ADDED, "b", "gpu-2", { snapshot: true }));
    fleet.apply(event(WatchEventType.ADDED, "c", "gpu-3", { snapshot: true }));
    expect(fleet.size).toBe(3);
    fleet.endSnapshot();

    expect(fleet.inOrder().map((agent) => agent.id)).toEqual(["b", "c"]);
    expect(fleet.take()).toMatchObject({ removed: new Set(["a"]), reordered: true });
  });

  it("forgets an agent that is REMOVED", () => {
    const fleet = new Fleet();
    fleet.apply(event(WatchEventType.ADDED, "a", "gpu-1"));
    fleet.apply(event(WatchEventType.REMOVED, "a", "gpu-1"));
    expect(fleet.size).toBe(0);
    expect(fleet.take().removed).toEqual(new Set(["a"]));
  });
});

describe("the dashboard's filter", () => {
  const agent = event(WatchEventType.ADDED, "a", "gpu-eu-01", { labels: { zone: "eu", gpu: "a100" } }).agent;
  it.each([
    ["", true],
    ["gpu-eu", true],
    ["GPU-EU-01", true],
    ["zone=eu", true],
    ["zone=eu a100", true],
    ["zone=us", false],
    ["10.0.0.7:11434", true],
    ["zone=eu gpu-us", false],
  ])("matches %j: %s", (text, expected) => {
    expect(parseFilter(text)(agent as NonNullable<typeof agent>)).toBe(expected);
  });
});

describe("the dashboard's last-beat age", () => {
  it.each([
    [4_000, "4s ago"],
    [200_000, "3m 20s ago"],
    [7_500_000, "2h 5m ago"],
    [6 * 86_400_000, "6d ago"],
  ])("writes %d ms as %s", (ago, text) => {
    expect(ageText(1_000_000_000_000 - ago, 1_000_000_000_000)).toBe(text);
  });
});
