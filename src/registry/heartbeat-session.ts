// The registry's side of one open Heartbeat stream: which agent it is for, how the registry ends it
// (superseded by a newer stream, the agent deregistered), and its beats, which the command layer applies.

import type { AgentId } from "./agent-id.js";
import type { AgentStatus } from "./agent.js";
import type { Inventory } from "./inventory.js";
import type { RegistryError } from "./registry-error.js";

/** One beat as the registry sees it: only what may change state. */
export interface Beat {
  readonly ollamaVersion?: string | undefined;
  readonly draining?: boolean | undefined;
  readonly leaving: boolean;
  /** The node's whole inventory, when it changed since it last sent one. */
  readonly inventory?: Inventory | undefined;
}

export interface BeatResult {
  /** Wall time the beat was taken in. */
  readonly serverTime: number;
  readonly status: AgentStatus;
  /** The heartbeat interval to tell the agent (ms): it is judged by it from this beat on. */
  readonly intervalMs: number;
}

/** What a session needs of the command layer. */
export interface BeatHandler {
  beat(session: HeartbeatSession, beat: Beat): BeatResult | Promise<BeatResult>;
  detach(session: HeartbeatSession): void;
}

export class HeartbeatSession {
  constructor(
    private readonly handler: BeatHandler,
    readonly agentId: AgentId,
    /** Called when the registry ends the stream; the transport then closes it with `reason`. */
    private readonly onEnd: (reason: RegistryError) => void,
  ) {}

  /**
   * Applies one beat. A beat that changes nothing visible is answered at once; one that does (a status,
   * draining or version change) resolves once the change is durable, and the beats after it wait behind
   * it, so answers always come in the order the beats did.
   */
  beat(beat: Beat): BeatResult | Promise<BeatResult> {
    return this.handler.beat(this, beat);
  }

  /** The transport closed (without `leaving`, this is not a leave: the agent keeps its deadline). */
  close(): void {
    this.handler.detach(this);
  }

  /** @internal The registry ends the stream. */
  end(reason: RegistryError): void {
    this.onEnd(reason);
  }
}
