// How one WatchAgents event looks in `agent-registry watch`: one line, e.g.
// "2026-11-27T01:02:03Z ADDED gpu-01 3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30 ONLINE". Pure.

import { type WatchAgentsResponse, WatchEventTypeSchema } from "../../gen/registry/v1/registry_pb.js";
import { enumName, formatStatus, formatTime } from "./agent-table.js";

/** `receivedMs` is when the event arrived: events carry a revision, not a time. */
export function formatWatchLine(event: WatchAgentsResponse, receivedMs: number): string {
  const agent = event.agent;
  const who = agent === undefined ? "- -" : `${agent.hostname} ${agent.id}`;
  const status = agent === undefined ? "-" : formatStatus(agent);
  return `${formatTime(receivedMs)} ${enumName(WatchEventTypeSchema, event.type)} ${who} ${status}`;
}
