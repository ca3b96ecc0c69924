// What the registry knows about one node: the durable record (what the store persists) and the view
// callers see (the record plus live facts that are never persisted).

import type { AgentId } from "./agent-id.js";

export type AgentStatus = "online" | "offline";

/** The persisted part of an agent. Times are milliseconds since the Unix epoch. */
export interface AgentRecord {
  readonly id: AgentId;
  readonly hostname: string;
  readonly ipAddress: string;
  readonly port: number;
  readonly ollamaVersion: string;
  readonly status: AgentStatus;
  readonly lastHeartbeat: number;
  readonly registeredAt: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly draining: boolean;
}

/** An agent as callers see it. */
export interface AgentView extends AgentRecord {
  /** True while a Heartbeat stream from the node is open. */
  readonly streamConnected: boolean;
  /** Whole heartbeat intervals elapsed since the last beat (or since start-up after a restart). */
  readonly missedHeartbeats: number;
}
