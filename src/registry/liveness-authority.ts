// The liveness authority: when each agent last beat, and when each ONLINE one must beat again. Deadlines
// are readings of the monotonic clock, so a step of the wall clock moves none of them; wall time is kept only
// as the last-beat timestamp that people read and the store keeps. Deadlines are judged only while promoted
// (a single process: from open to shutdown; replicas: while this one holds authority), and a promotion grants
// every ONLINE agent one timeout of grace from that instant, so a restart never marks the fleet offline.
// What an expiry leads to (an OFFLINE commit) is the command layer's business, not this one's.

import type { Clock } from "../common/clock.js";
import type { AgentId } from "./agent-id.js";
import type { AgentRecord } from "./agent.js";
import { LivenessTracker } from "./liveness-tracker.js";

interface Liveness {
  /** Monotonic time that missed beats and the deadline count from: the last beat, or a promotion if later. */
  since: number;
  /** Wall time of the last beat, as shown and stored. */
  lastBeat: number;
  online: boolean;
}

export interface LivenessAuthorityOptions {
  readonly clock: Clock;
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  /** An ONLINE agent's deadline passed while promoted. */
  readonly onExpired: (id: AgentId) => void;
}

export class LivenessAuthority {
  private readonly agents = new Map<AgentId, Liveness>();
  private tracker: LivenessTracker<AgentId> | undefined;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: LivenessAuthorityOptions) {
    this.clock = options.clock;
    this.intervalMs = options.heartbeatIntervalMs;
    this.timeoutMs = options.agentTimeoutMs;
  }

  get promoted(): boolean {
    return this.tracker !== undefined;
  }

  /**
   * Follows a record the agent table now holds (loaded, or committed by any writer). A record seen for the
   * first time counts from its stored last beat, converted to the monotonic clock once; after that only
   * beats move it (a wall-clock step since then changes nothing). Turning ONLINE counts as a beat now
   * (a Register or beat just proved the node alive) and arms the deadline; turning OFFLINE disarms it.
   */
  follow(record: AgentRecord): void {
    const online = record.status === "online";
    const known = this.agents.get(record.id);
    if (known === undefined) {
      const since = this.clock.monotonic() - (this.clock.now() - record.lastHeartbeat);
      this.agents.set(record.id, { since, lastBeat: record.lastHeartbeat, online });
      if (online) this.arm(record.id);
      return;
    }
    if (known.online === online) return;
    known.online = online;
    if (online) {
      known.since = Math.max(known.since, this.clock.monotonic());
      this.arm(record.id);
    } else {
      this.tracker?.forget(record.id);
    }
  }

  /** A beat (or an acknowledged Register): missed beats and the deadline count from now. */
  beat(id: AgentId): void {
    const liveness = this.agents.get(id);
    if (liveness === undefined) return;
    liveness.since = this.clock.monotonic();
    liveness.lastBeat = this.clock.now();
    if (liveness.online) this.arm(id);
  }

  forget(id: AgentId): void {
    this.agents.delete(id);
    this.tracker?.forget(id);
  }

  /**
   * Starts judging deadlines. Every ONLINE agent counts from now or its last beat, whichever is later: the
   * grace after a restart, or after this replica gains authority.
   */
  promote(): void {
    if (this.tracker !== undefined) return;
    this.tracker = new LivenessTracker(this.clock, (id) => this.expired(id));
    const now = this.clock.monotonic();
    for (const [id, liveness] of this.agents) {
      if (!liveness.online) continue;
      liveness.since = Math.max(liveness.since, now);
      this.arm(id);
    }
  }

  /** Stops judging deadlines (shutdown, or this replica lost authority): no agent turns OFFLINE by timeout. */
  demote(): void {
    this.tracker?.close();
    this.tracker = undefined;
  }

  /** Wall time of the agent's last beat; undefined for an agent not followed. */
  lastBeat(id: AgentId): number | undefined {
    return this.agents.get(id)?.lastBeat;
  }

  /** Whole heartbeat intervals since the last beat (or since the promotion, for an agent restored ONLINE). */
  missed(id: AgentId): number {
    const liveness = this.agents.get(id);
    if (liveness === undefined) return 0;
    return Math.max(0, Math.floor((this.clock.monotonic() - liveness.since) / this.intervalMs));
  }

  /**
   * How long ago an ONLINE agent's deadline passed (now - last beat > timeout); undefined while it is not
   * past it, or not ONLINE.
   */
  overdueMs(id: AgentId): number | undefined {
    const liveness = this.agents.get(id);
    if (liveness === undefined || !liveness.online) return undefined;
    const late = this.clock.monotonic() - (liveness.since + this.timeoutMs);
    return late > 0 ? late : undefined;
  }

  private arm(id: AgentId): void {
    const liveness = this.agents.get(id);
    if (liveness !== undefined) this.tracker?.expireAt(id, liveness.since + this.timeoutMs);
  }

  private expired(id: AgentId): void {
    if (this.agents.get(id)?.online === true) this.options.onExpired(id);
  }
}
