// The liveness authority: when each agent last beat, and when each ONLINE one must beat again. Deadlines
// are readings of the monotonic clock, so a step of the wall clock moves none of them; wall time is kept only
// as the last-beat timestamp that people read and the store keeps. Deadlines are judged only while promoted
// (from open to shutdown), and a promotion grants every ONLINE agent one timeout of grace from that instant,
// so a restart never marks the fleet offline. With replicas (liveness-peers.ts), an agent whose stream another
// replica holds is judged there: no deadline here, shown by the beat times the store gets, never silent in
// the guard's census; its lapsed claim times it out here. Each agent is judged by the interval it was last
// told (heartbeat-pace.ts), and a passed deadline goes to the offline guard first, which may hold it
// (offline-guard.ts). What an expiry or a hold leads to (a commit) is the command layer's business.

import type { Clock } from "../common/clock.js";
import { type Log, silentLog } from "../common/log.js";
import type { AgentId } from "./agent-id.js";
import type { AgentRecord } from "./agent.js";
import { HeartbeatPace } from "./heartbeat-pace.js";
import { LivenessTracker } from "./liveness-tracker.js";
import { type Census, DEFAULT_OFFLINE_GUARD, type HoldState, OfflineGuard, type OfflineGuardSettings } from "./offline-guard.js";

interface Liveness {
  /** Monotonic time that missed beats and the deadline count from: the last beat, or a promotion if later. */
  since: number;
  /** Wall time of the last beat, as shown and stored. */
  lastBeat: number;
  online: boolean;
  /** The interval told at the last beat. */
  toldMs: number;
  /**
   * The interval the agent is judged by until its next beat: the longer of the last two it was told, since
   * its next beat may already be due by the older one when a shorter one is told.
   */
  judgedMs: number;
}

export interface LivenessAuthorityOptions {
  readonly clock: Clock;
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  /** Fleet-wide beats per second at most, by stretching the interval told (0 or absent: no cap). */
  readonly maxBeatsPerSecond?: number;
  /** Default: DEFAULT_OFFLINE_GUARD (share 0 turns it off). */
  readonly offlineGuard?: OfflineGuardSettings;
  readonly log?: Log;
  /** An ONLINE agent's deadline passed while promoted (and the offline guard does not hold it). */
  readonly onExpired: (id: AgentId) => void;
  /** An ONLINE agent's deadline passed during a hold of the offline guard: it stays ONLINE, held. */
  readonly onHeld?: (id: AgentId) => void;
  /** The agent beat here (replicas: keep this replica's claim on it alive), with the timeout it is judged by. */
  readonly onBeat?: (id: AgentId, timeoutMs: number) => void;
}

export class LivenessAuthority {
  private readonly agents = new Map<AgentId, Liveness>();
  private tracker: LivenessTracker<AgentId> | undefined;
  private readonly clock: Clock;
  private readonly pace: HeartbeatPace;
  private readonly guard: OfflineGuard;
  /** Agents past their deadline whose timeout the guard holds. */
  private readonly held = new Set<AgentId>();
  /** Agents timed out whose OFFLINE change is not applied yet: the guard already counts them as timed out. */
  private readonly expiring = new Set<AgentId>();
  /** Agents another replica judges (it holds their stream): no deadline here, and not silent in the census. */
  private readonly elsewhere = new Set<AgentId>();
  private online = 0;

  constructor(private readonly options: LivenessAuthorityOptions) {
    this.clock = options.clock;
    this.pace = new HeartbeatPace({
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      agentTimeoutMs: options.agentTimeoutMs,
      maxBeatsPerSecond: options.maxBeatsPerSecond ?? 0,
    });
    this.guard = new OfflineGuard({
      settings: options.offlineGuard ?? DEFAULT_OFFLINE_GUARD,
      clock: options.clock,
      log: options.log ?? silentLog,
      windowMs: () => this.pace.timeoutFor(this.intervalMs),
      recheckMs: Math.min(options.heartbeatIntervalMs, 1000),
      census: () => this.census(),
      released: (reason) => this.release(reason),
    });
  }

  get promoted(): boolean {
    return this.tracker !== undefined;
  }

  /** The interval to tell agents now: the configured one, or longer for a fleet past the beats-per-second cap. */
  get intervalMs(): number {
    return this.pace.intervalFor(this.online);
  }

  /** The hold of the offline guard under way, with how many agents it holds; undefined when none. */
  get hold(): (HoldState & { readonly held: number }) | undefined {
    const state = this.guard.state;
    return state === undefined ? undefined : { ...state, held: this.held.size };
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
      if (online) this.online++;
      const told = this.intervalMs;
      this.agents.set(record.id, { since, lastBeat: record.lastHeartbeat, online, toldMs: told, judgedMs: told });
      if (online) this.arm(record.id);
      return;
    }
    if (this.elsewhere.has(record.id) && record.lastHeartbeat > known.lastBeat) {
      // Judged by another replica, which stores its beat times now and then: shown as of the latest stored.
      known.lastBeat = record.lastHeartbeat;
      known.since = Math.max(known.since, this.clock.monotonic() - (this.clock.now() - record.lastHeartbeat));
    }
    if (known.online === online) return;
    known.online = online;
    this.online += online ? 1 : -1;
    if (online) {
      known.since = Math.max(known.since, this.clock.monotonic());
      this.arm(record.id);
    } else {
      this.tracker?.forget(record.id);
      this.expiring.delete(record.id);
      this.unhold(record.id);
    }
  }

  /**
   * A beat (or an acknowledged Register): missed beats and the deadline count from now. Returns the
   * interval to tell the agent, which it is judged by from now on. `wallNow` is the wall time the caller
   * tells the agent (the ack's server_time), so the stored last beat and the ack agree to the millisecond.
   */
  beat(id: AgentId, wallNow: number = this.clock.now()): number {
    const told = this.intervalMs;
    const liveness = this.agents.get(id);
    if (liveness === undefined) return told;
    liveness.since = this.clock.monotonic();
    liveness.lastBeat = wallNow;
    liveness.judgedMs = Math.max(liveness.toldMs, told);
    liveness.toldMs = told;
    this.elsewhere.delete(id);
    this.expiring.delete(id);
    this.unhold(id);
    if (liveness.online) this.arm(id);
    this.options.onBeat?.(id, this.pace.timeoutFor(liveness.judgedMs));
    return told;
  }

  /** Another replica holds the agent's stream and judges it: no deadline here until it beats here again. */
  judgedElsewhere(id: AgentId): void {
    this.elsewhere.add(id);
    this.tracker?.forget(id);
    this.unhold(id);
  }

  /**
   * No replica kept the agent's claim alive for its timeout (the replica that judged it is gone): it is past
   * its deadline here and now, and times out like any other (the offline guard may hold it).
   */
  lapsed(id: AgentId): void {
    const liveness = this.agents.get(id);
    this.elsewhere.delete(id);
    if (liveness === undefined || !liveness.online) return;
    liveness.since = Math.min(liveness.since, this.clock.monotonic() - this.pace.timeoutFor(liveness.judgedMs) - 1);
    if (this.tracker !== undefined) {
      this.tracker.forget(id);
      this.expired(id);
    }
  }

  forget(id: AgentId): void {
    const liveness = this.agents.get(id);
    if (liveness === undefined) return;
    if (liveness.online) this.online--;
    this.agents.delete(id);
    this.elsewhere.delete(id);
    this.tracker?.forget(id);
    this.expiring.delete(id);
    this.unhold(id);
  }

  /**
   * Starts judging deadlines. Every ONLINE agent counts from now or its last beat, whichever is later: the
   * grace after a restart, or after this replica gains authority. Each is judged by the interval agents are
   * told now (the fleet is known in full only now).
   */
  promote(): void {
    if (this.tracker !== undefined) return;
    this.tracker = new LivenessTracker(this.clock, (id) => this.expired(id));
    const now = this.clock.monotonic();
    const told = this.intervalMs;
    for (const [id, liveness] of this.agents) {
      if (!liveness.online) continue;
      liveness.since = Math.max(liveness.since, now);
      liveness.toldMs = Math.max(liveness.toldMs, told);
      liveness.judgedMs = Math.max(liveness.judgedMs, told);
      this.arm(id);
    }
  }

  /** Stops judging deadlines (shutdown, or this replica lost authority): no agent turns OFFLINE by timeout. */
  demote(): void {
    this.tracker?.close();
    this.tracker = undefined;
    this.guard.close();
    this.held.clear();
    this.expiring.clear();
  }

  /** Wall time of the agent's last beat; undefined for an agent not followed. */
  lastBeat(id: AgentId): number | undefined {
    return this.agents.get(id)?.lastBeat;
  }

  /** Whole heartbeat intervals since the last beat (or since the promotion, for an agent restored ONLINE). */
  missed(id: AgentId, monotonicNow: number = this.clock.monotonic()): number {
    const liveness = this.agents.get(id);
    if (liveness === undefined) return 0;
    return Math.max(0, Math.floor((monotonicNow - liveness.since) / liveness.judgedMs));
  }

  /** Agents held now: during a hold, and those still silent in the interval a hold's end leaves them. */
  get heldCount(): number {
    return this.held.size;
  }

  /** Whether the offline guard holds the agent's timeout (it is past its deadline, still ONLINE). */
  isHeld(id: AgentId): boolean {
    return this.held.has(id);
  }

  /** The timeout the agent is judged by: the configured one, stretched with the interval it was told. */
  timeoutMs(id: AgentId): number {
    const liveness = this.agents.get(id);
    return this.pace.timeoutFor(liveness?.judgedMs ?? this.intervalMs);
  }

  /**
   * How long ago an ONLINE agent's deadline passed (now - last beat > timeout); undefined while it is not
   * past it, or not ONLINE.
   */
  overdueMs(id: AgentId): number | undefined {
    const liveness = this.agents.get(id);
    if (liveness === undefined || !liveness.online) return undefined;
    const late = this.clock.monotonic() - this.deadline(liveness);
    return late > 0 ? late : undefined;
  }

  /** Monotonic time past which the agent is OFFLINE: its timeout, as stretched by what it was told, after `since`. */
  private deadline(liveness: Liveness): number {
    return liveness.since + this.pace.timeoutFor(liveness.judgedMs);
  }

  private arm(id: AgentId): void {
    const liveness = this.agents.get(id);
    if (liveness !== undefined && !this.elsewhere.has(id)) this.tracker?.expireAt(id, this.deadline(liveness));
  }

  private expired(id: AgentId): void {
    if (this.agents.get(id)?.online !== true) return;
    if (this.guard.admit()) {
      this.held.add(id);
      this.options.onHeld?.(id);
      return;
    }
    this.timeOut(id);
  }

  private timeOut(id: AgentId): void {
    this.held.delete(id);
    this.expiring.add(id);
    this.guard.timedOut();
    this.options.onExpired(id);
  }

  /** The agent beat, left or is gone: no longer held, and the hold may be over. */
  private unhold(id: AgentId): void {
    if (this.held.delete(id)) this.guard.changed();
  }

  /**
   * The hold ended. After its maximum, every agent it held that is still past its deadline times out now.
   * When most of the fleet beat again, those still silent get one more interval of theirs first, still
   * held (suspect): a network that comes back brings the fleet's beats back over one interval, not at once,
   * and the hold ends as soon as enough have beaten to fall under the threshold, before the rest had their turn.
   */
  private release(reason: "recovered" | "maxHold"): void {
    const now = this.clock.monotonic();
    for (const id of [...this.held]) {
      const liveness = this.agents.get(id);
      if (liveness === undefined || this.overdueMs(id) === undefined) {
        this.held.delete(id);
      } else if (reason === "maxHold") {
        this.timeOut(id);
      } else {
        this.tracker?.expireAt(id, now + liveness.judgedMs);
      }
    }
  }

  /**
   * ONLINE agents, and those silent for their interval and a quarter of the slack up to their timeout; both
   * without the agents timed out already (the guard counts those itself). An agent judged by another replica
   * counts as ONLINE and never as silent here: its silence is judged where its stream is.
   */
  private census(): Census {
    const now = this.clock.monotonic();
    let silent = 0;
    for (const [id, liveness] of this.agents) {
      if (!liveness.online || this.expiring.has(id) || this.elsewhere.has(id)) continue;
      const silentAfter = liveness.judgedMs + (this.pace.timeoutFor(liveness.judgedMs) - liveness.judgedMs) / 4;
      if (now - liveness.since > silentAfter) silent++;
    }
    return { online: this.online - this.expiring.size, silent };
  }
}
