import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AgentStatus, WatchAgentsResponseSchema, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { formatWatchLine } from "../../src/cli/watch-line.js";
import { NOW, agent } from "./agent-builders.js";

describe("a watch line", () => {
  it("shows when the event arrived, its type, the agent's hostname, id and status", () => {
    const event = create(WatchAgentsResponseSchema, { type: WatchEventType.ADDED, agent: agent(), revision: 3n, snapshot: true });
    expect(formatWatchLine(event, NOW)).toBe("2026-11-27T01:02:03Z ADDED gpu-01 3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30 ONLINE");
  });

  it("names status changes and draining nodes as the table does", () => {
    const event = create(WatchAgentsResponseSchema, {
      type: WatchEventType.STATUS_CHANGED,
      agent: agent({ status: AgentStatus.OFFLINE, draining: true }),
    });
    expect(formatWatchLine(event, NOW)).toBe(
      "2026-11-27T01:02:03Z STATUS_CHANGED gpu-01 3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30 OFFLINE,DRAINING",
    );
  });

  it("keeps its columns when an event has no agent", () => {
    expect(formatWatchLine(create(WatchAgentsResponseSchema, { type: WatchEventType.REMOVED }), NOW)).toBe(
      "2026-11-27T01:02:03Z REMOVED - - -",
    );
  });
});
