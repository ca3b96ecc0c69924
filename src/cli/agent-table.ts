// How agents look in a terminal: the `agent-registry list` table and the cells it is made of (ages,
// labels, status words, addresses, times). Pure functions of wire messages and the current time; no I/O.

import type { DescEnum } from "@bufbuild/protobuf";
import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import { type Agent, type AgentStatus, AgentStatusSchema } from "../../gen/registry/v1/registry_pb.js";
import { formatGpus, formatModels } from "./inventory-cells.js";

export const TABLE_HEADERS = ["HOSTNAME", "ID", "ADDRESS", "VERSION", "STATUS", "LAST BEAT", "GPUS", "MODELS", "LABELS"] as const;

/** Columns are separated by this many spaces, as kubectl does. */
const GAP = 3;

/** The table for `list`, one agent a row in the order given (the server's: hostname, then id). */
export function formatAgentTable(agents: readonly Agent[], nowMs: number): string {
  const rows = agents.map((agent) =>
    [
      agent.hostname,
      agent.id,
      agentAddress(agent),
      agent.ollamaVersion,
      formatStatus(agent),
      formatAge(agent.lastHeartbeat, nowMs),
      formatGpus(agent.gpus),
      formatModels(agent.models),
      formatLabels(agent.labels),
    ].map((cell) => (cell === "" ? "-" : cell)),
  );
  return formatColumns([[...TABLE_HEADERS], ...rows]);
}

/** Left-aligned columns, each as wide as its widest cell; the last column is not padded. */
export function formatColumns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + GAP))).join(""))
    .map((line) => `${line}\n`)
    .join("");
}

/** "4s ago", "3m ago", "2h ago", "5d ago"; "never" without a time. A time ahead of ours (skew) is "0s ago". */
export function formatAge(then: Timestamp | undefined, nowMs: number): string {
  if (then === undefined) return "never";
  const seconds = Math.max(0, Math.floor((nowMs - timestampMs(then)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

/** "k=v,k2=v2" sorted by key: the label selector syntax, so a row can be pasted into --selector. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key] ?? ""}`)
    .join(",");
}

/**
 * "ONLINE" or "OFFLINE", with ",HELD" while the offline guard keeps a silent node ONLINE and ",DRAINING" when
 * the node asks for no new work (kubectl's "Ready,SchedulingDisabled"); ",UNREACHABLE" when the reachability
 * probe cannot reach its Ollama.
 */
export function formatStatus(agent: Pick<Agent, "status" | "draining" | "livenessHeld"> & Partial<Pick<Agent, "reachable">>): string {
  return [
    statusName(agent.status),
    ...(agent.livenessHeld ? ["HELD"] : []),
    ...(agent.draining ? ["DRAINING"] : []),
    ...(agent.reachable === false ? ["UNREACHABLE"] : []),
  ].join(",");
}

export function statusName(status: AgentStatus): string {
  return enumName(AgentStatusSchema, status);
}

/** The short name of an enum value ("ONLINE" for AGENT_STATUS_ONLINE), or the number if this build does not know it. */
export function enumName(schema: DescEnum, value: number): string {
  return schema.value[value]?.localName ?? String(value);
}

/** Where the node's Ollama listens: "10.0.0.1:11434", "[fd00::1]:11434". */
export function agentAddress(agent: Pick<Agent, "ipAddress" | "port">): string {
  if (agent.ipAddress === "") return "";
  return agent.ipAddress.includes(":") ? `[${agent.ipAddress}]:${agent.port}` : `${agent.ipAddress}:${agent.port}`;
}

/** RFC 3339 UTC to the second, e.g. "2026-11-27T01:02:03Z". */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A wire Timestamp as formatTime does, "never" without one. */
export function formatTimestamp(timestamp: Timestamp | undefined): string {
  return timestamp === undefined ? "never" : formatTime(timestampMs(timestamp));
}
