// How one agent looks in `agent-registry get`: every field, one per line, times with their age.
// A pure function of the wire message and the current time.

import type { Agent } from "../../gen/registry/v1/registry_pb.js";
import { inventoryFields } from "./inventory-cells.js";
import { agentAddress, formatAge, formatColumns, formatLabels, formatTimestamp, statusName } from "./agent-table.js";

export function formatAgentDetail(agent: Agent, nowMs: number): string {
  const fields: Array<[string, string]> = [
    ["ID:", agent.id],
    ["Hostname:", agent.hostname],
    ["Address:", agentAddress(agent)],
    ["Ollama version:", agent.ollamaVersion],
    ["Status:", statusName(agent.status)],
    ["Liveness held:", agent.livenessHeld ? "yes: past its timeout, kept ONLINE by the offline guard; treat as suspect" : "no"],
    ["Draining:", agent.draining ? "yes" : "no"],
    ["Heartbeat stream:", agent.streamConnected ? "connected" : "not connected"],
    ["Last beat:", withAge(agent.lastHeartbeat, nowMs)],
    ["Missed beats:", String(agent.missedHeartbeats)],
    ["Registered:", withAge(agent.registeredAt, nowMs)],
    ["Labels:", formatLabels(agent.labels)],
    ...inventoryFields(agent),
  ];
  return formatColumns(fields.map(([name, value]) => [name, value === "" ? "-" : value]));
}

function withAge(timestamp: Agent["lastHeartbeat"], nowMs: number): string {
  return timestamp === undefined ? "never" : `${formatTimestamp(timestamp)} (${formatAge(timestamp, nowMs)})`;
}
