// How the page writes times, sizes and an agent's labels, GPUs and models: short, for a table cell.

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Agent } from "../../gen/registry/v1/registry_pb.js";

export function millisOf(timestamp: Timestamp | undefined): number | undefined {
  if (timestamp === undefined) return undefined;
  return Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6);
}

/** "4s ago", "3m 20s ago", "2h 5m ago", "6d ago"; "never" without a beat. */
export function ageText(sinceMs: number | undefined, nowMs: number): string {
  if (sinceMs === undefined || sinceMs <= 0) return "never";
  const seconds = Math.max(0, Math.floor((nowMs - sinceMs) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m ago`;
  return `${Math.floor(hours / 24)}d ago`;
}

export function addressText(agent: Agent): string {
  return agent.ipAddress.includes(":") ? `[${agent.ipAddress}]:${agent.port}` : `${agent.ipAddress}:${agent.port}`;
}

export function labelPairs(agent: Agent): string[] {
  return Object.keys(agent.labels)
    .sort()
    .map((key) => `${key}=${agent.labels[key] ?? ""}`);
}
