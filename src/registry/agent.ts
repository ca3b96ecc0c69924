// What the registry knows about one node: the record (what the store commits) and the view callers see
// (the record plus the liveness facts the liveness authority keeps: last beat and missed beats).

import type { AgentId } from "./agent-id.js";
import type { SecretHash } from "./agent-secret.js";
import type { Inventory } from "./inventory.js";

export type AgentStatus = "online" | "offline";

/** An agent as the store commits it. Times are milliseconds since the Unix epoch. */
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
   * True while a Heartbeat stream from the node is open. Committed like the rest (it is a visible change)
   * but live: a single-process store never writes it, and every record it loads has it false.
   */
  readonly streamConnected: boolean;
  /**
   * True while the offline guard holds the agent's timeout: past its deadline, still ONLINE. Committed like
   * the stream flag (a visible change) and, like it, live: never written by a single-process store.
   */
  readonly livenessHeld: boolean;
  /**
   * The hash of the secret the agent's first Register returned. Absent for an agent that never registered
   * with this server (e.g. one loaded from the prototype's file): it gets one at its next Register.
   */
  readonly secretHash?: SecretHash | undefined;
  /** The GPUs and models the node last reported; absent if it never sent an inventory. */
  readonly inventory?: Inventory | undefined;
  /** When the registry took that inventory (ms since the epoch); absent with it. */
  readonly inventoryUpdatedAt?: number | undefined;
  /**
   * Set while the reachability probe finds the node's Ollama unreachable: the address and the error. Live
   * like the stream flag: never written by a single-process store, absent in every record it loads.
   */
  readonly unreachable?: string | undefined;
}

/** Whether two label sets hold the same pairs. */
export function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

/** An agent as callers see it: never with its secret's hash. */
export interface AgentView extends Omit<AgentRecord, "secretHash"> {
  /** Whole heartbeat intervals elapsed since the last beat (or since start-up after a restart). */
  readonly missedHeartbeats: number;
}
