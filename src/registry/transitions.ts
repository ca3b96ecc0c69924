// Status changes of agents as the registry reports them to metrics (which live outside the domain).

import type { AgentStatus } from "./agent.js";

export type TransitionReason = "registered" | "heartbeat" | "leaving" | "timeout" | "deregistered";

/** A change of an agent's status; "absent" is not being in the registry. */
export interface Transition {
  readonly from: AgentStatus | "absent";
  readonly to: AgentStatus | "absent";
  readonly reason: TransitionReason;
  /** For timeouts: how long after the deadline the OFFLINE change was committed. */
  readonly lateMs?: number;
}

/** Told about every status change, once it is committed. */
export interface RegistryObserver {
  transition(transition: Transition): void;
}
