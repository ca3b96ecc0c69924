// What the registry knows about one node: the durable record (what the store persists) and the view
// callers see (the record plus live facts that are never persisted).

import type { AgentId } from "./agent-id.js";
import type { SecretHash } from "./agent-secret.js";

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
  /**
   * The hash of the secret the agent's first Register returned. Absent for an agent that never registered
   * with this server (e.g. one loaded from the prototype's file): it gets one at its next Register.
   */
  readonly secretHash?: SecretHash | undefined;
}

/** An agent as callers see it: never with its secret's hash. */
export interface AgentView extends Omit<AgentRecord, "secretHash"> {
  /** True while a Heartbeat stream from the node is open. */
  readonly streamConnected: boolean;
  /** Whole heartbeat intervals elapsed since the last beat (or since start-up after a restart). */
  readonly missedHeartbeats: number;
}
