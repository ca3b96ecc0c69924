// The command side of the registry: Register, Deregister, what beats change (status, draining, version,
// the stream's presence) and timeouts. Each command reads the agent table, decides, and proposes a
// conditional change to the store ("put R if its revision is still N"); the table changes only once the
// store has committed it, so a failed write leaves nothing to undo. Commands on one agent run one at a time;
// a conflict (another writer changed the agent first) is tried again on the table as it now is, and
// answered ABORTED when it keeps happening. Also holds the open Heartbeat sessions, one per agent.

import type { Clock, Timer } from "../common/clock.js";
import type { Log } from "../common/log.js";
import type { AgentId } from "./agent-id.js";
import type { AgentRecord, AgentStatus, AgentView } from "./agent.js";
import type { AgentTable } from "./agent-table.js";
import type { BeatFlusher } from "./beat-flusher.js";
import type { FleetCap } from "./fleet-cap.js";
import { type Beat, type BeatHandler, type BeatResult, HeartbeatSession } from "./heartbeat-session.js";
import type { DeregisterProof, IdOwnership } from "./id-ownership.js";
import type { LivenessAuthority } from "./liveness-authority.js";
import { sameInventory } from "./inventory.js";
import { PerKeyQueue } from "./per-key-queue.js";
import type { Registration } from "./registration.js";
import { RegistryError, agentNotFound, invalidArgument } from "./registry-error.js";
import { ABSENT, type Store, StoreConflict, StoreError, type StoreChange, type StoredAgent } from "./store.js";
import type { RegistryObserver } from "./transitions.js";

/** What a Register did. */
export interface Registered {
  readonly agent: AgentView;
  /** The agent's new secret, when this Register gave the id one (its first); the store keeps only its hash. */
  readonly secret: string | undefined;
  /** The interval and timeout the agent is judged by from this Register on (ms). */
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
}

export interface AgentCommandsOptions {
  readonly store: Store;
  readonly table: AgentTable;
  readonly authority: LivenessAuthority;
  readonly ownership: IdOwnership;
  readonly cap: FleetCap;
  readonly beats: BeatFlusher;
  readonly clock: Clock;
  readonly log: Log;
  readonly observer: RegistryObserver | undefined;
  readonly newId: () => AgentId;
  readonly view: (record: AgentRecord) => AgentView;
}

/** Tries of one command against other writers' changes before it is answered ABORTED. */
const CONFLICT_TRIES = 5;
/** A timeout whose OFFLINE change could not be written is tried again, backing off to 5 s. */
const EXPIRY_RETRY_MIN_MS = 250;
const EXPIRY_RETRY_MAX_MS = 5000;

export class AgentCommands implements BeatHandler {
  private readonly queue = new PerKeyQueue<AgentId>();
  private readonly sessions = new Map<AgentId, HeartbeatSession>();
  /** Agents whose timeout is yet to be committed (the store could not write), and the timer that retries. */
  private readonly unwrittenExpiries = new Set<AgentId>();
  private expiryTimer: Timer | undefined;
  private expiryDelayMs = EXPIRY_RETRY_MIN_MS;
  private closed = false;

  constructor(private readonly options: AgentCommandsOptions) {}

  /** Open Heartbeat streams. */
  get streams(): number {
    return this.sessions.size;
  }

  /** Whether this process holds the agent's Heartbeat stream. */
  holdsStream(id: AgentId): boolean {
    return this.sessions.has(id);
  }

  /**
   * Creates or updates an agent; resolves once durable. `peerAddress` fills an empty ip_address. `secret`
   * is the agent's secret, needed (when enforced) to register an id that holds one again.
   */
  async register(registration: Registration, peerAddress: string | undefined, secret?: string): Promise<Registered> {
    const ipAddress = registration.ipAddress ?? peerAddress;
    if (ipAddress === undefined) {
      throw invalidArgument("ip_address", "is required when the server cannot see the caller's address (e.g. behind a proxy)");
    }
    const id = registration.id ?? this.options.newId();
    return this.queue.run(id, () =>
      this.retryingConflicts(id, "Register", async () => {
        const existing = this.options.table.get(id);
        this.options.ownership.checkRegister(existing?.record, secret);
        const issued = this.options.ownership.issueFor(existing?.record);
        const now = this.options.clock.now();
        const record: AgentRecord = {
          id,
          hostname: registration.hostname,
          ipAddress,
          port: registration.port,
          ollamaVersion: registration.ollamaVersion,
          labels: registration.labels,
          draining: existing?.record.draining ?? false,
          status: "online",
          lastHeartbeat: now,
          registeredAt: existing?.record.registeredAt ?? now,
          streamConnected: this.sessions.has(id),
          livenessHeld: false,
          secretHash: existing?.record.secretHash ?? issued?.hash,
          inventory: registration.inventory,
          inventoryUpdatedAt: registration.inventory === undefined ? undefined : now,
          unreachable: existing?.record.unreachable,
        };
        // A full registry refuses a new id before anything is written; a known id always re-registers.
        const release = existing === undefined ? this.options.cap.reserve(id) : () => undefined;
        try {
          await this.commit([{ put: record, expectedRevision: existing?.revision ?? ABSENT }]);
        } finally {
          release();
        }
        // Liveness counts from the acknowledgement, so a slow disk never eats into the node's first interval.
        const heartbeatIntervalMs = this.options.authority.beat(id);
        this.options.log.info(
          { agentId: id, hostname: record.hostname, address: `${record.ipAddress}:${record.port}` },
          existing === undefined ? "agent registered" : "agent re-registered",
        );
        const from = existing?.record.status ?? "absent";
        if (from !== "online") this.options.observer?.transition({ from, to: "online", reason: "registered" });
        return {
          agent: this.options.view(this.current(id).record),
          secret: issued?.secret,
          heartbeatIntervalMs,
          agentTimeoutMs: this.options.authority.timeoutMs(id),
        };
      }),
    );
  }

  /**
   * Removes an agent; resolves once durable, and then ends its open stream with notFound. When secrets are
   * enforced the caller proves it is the node (its secret) or an admin.
   */
  deregister(id: AgentId, proof: DeregisterProof = {}): Promise<void> {
    return this.queue.run(id, () =>
      this.retryingConflicts(id, "Deregister", async () => {
        const existing = this.options.table.get(id);
        if (existing === undefined) throw agentNotFound(id);
        this.options.ownership.checkDeregister(existing.record, proof);
        await this.commit([{ delete: id, expectedRevision: existing.revision }]);
        this.unwrittenExpiries.delete(id);
        const session = this.sessions.get(id);
        this.sessions.delete(id);
        session?.end(new RegistryError("notFound", `agent ${id} was deregistered; register again to rejoin`));
        this.options.log.info({ agentId: id, hostname: existing.record.hostname }, "agent deregistered");
        this.options.observer?.transition({ from: existing.record.status, to: "absent", reason: "deregistered" });
      }),
    );
  }

  /**
   * Opens the registry's side of a Heartbeat stream. A previous stream of the same agent is superseded: it
   * ends with aborted. `end` is called if the registry ends this one (superseded, deregistered). `secret` is
   * the agent's secret, needed (when enforced) if it holds one.
   */
  openHeartbeat(id: AgentId, end: (reason: RegistryError) => void, secret?: string): HeartbeatSession {
    const entry = this.options.table.get(id);
    if (entry === undefined) throw agentNotFound(id, "call Register (with the same id), then beat again");
    this.options.ownership.checkStream(entry.record, secret);
    const previous = this.sessions.get(id);
    const session = new HeartbeatSession(this, id, end);
    this.sessions.set(id, session);
    if (previous !== undefined) {
      this.options.log.info({ agentId: id }, "heartbeat stream superseded by a newer one");
      previous.end(new RegistryError("aborted", `superseded by a newer Heartbeat stream for agent ${id}; only the newest is kept`));
    }
    this.showPresence(id);
    return session;
  }

  /**
   * One beat: liveness counts from its arrival at once. A beat that changes nothing visible is answered at
   * once (the hot path: no promise, no write); one that does, or one behind a command still running for
   * this agent, is answered once its change is durable.
   */
  beat(session: HeartbeatSession, beat: Beat): BeatResult | Promise<BeatResult> {
    const id = session.agentId;
    const entry = this.currentFor(session);
    const { authority, beats, clock } = this.options;
    const serverTime = clock.now();
    const intervalMs = authority.beat(id, serverTime);
    beats.mark(id);
    if (!this.queue.busy(id) && !changedBy(entry.record, beat)) return { serverTime, status: entry.record.status, intervalMs };
    return this.queue.run(id, () =>
      this.retryingConflicts(id, "the beat", () => this.applyBeat(session, beat, { serverTime, intervalMs })),
    );
  }

  /** The transport closed: the agent keeps its deadline (a broken stream is not a leave). */
  detach(session: HeartbeatSession): void {
    if (this.sessions.get(session.agentId) !== session) return;
    this.sessions.delete(session.agentId);
    this.showPresence(session.agentId);
  }

  /** The liveness authority found the agent past its deadline: commit it OFFLINE (retried until written). */
  expire(id: AgentId): void {
    void this.queue
      .run(id, () => this.retryingConflicts(id, "the timeout", () => this.commitTimeout(id)))
      .catch((error: unknown) => {
        if (error instanceof RegistryError && error.kind === "unavailable") this.retryExpiry(id);
        else this.options.log.error({ err: error, agentId: id }, "could not mark an agent offline after its timeout");
      });
  }

  /**
   * The offline guard holds the agent's timeout: commit it as held (still ONLINE), so callers see it. Nobody
   * waits for it; one that cannot be committed is shown by the next change of the agent instead.
   */
  hold(id: AgentId): void {
    if (this.closed) return;
    void this.queue
      .run(id, () =>
        this.retryingConflicts(id, "the hold", async () => {
          const entry = this.options.table.get(id);
          if (entry === undefined || entry.record.livenessHeld || !this.options.authority.isHeld(id)) return;
          await this.commit([{ put: { ...entry.record, livenessHeld: true }, expectedRevision: entry.revision }]);
        }),
      )
      .catch((error: unknown) => this.options.log.debug({ err: error, agentId: id }, "liveness hold not shown yet"));
  }

  /**
   * The reachability probe's verdict on an agent: `unreachable` says why it cannot be reached, undefined
   * that it can. Committed (a visible change) only when it differs from what callers see now; an agent
   * gone meanwhile is left alone.
   */
  async setReachability(id: AgentId, unreachable: string | undefined): Promise<void> {
    if (this.closed) return;
    await this.queue.run(id, () =>
      this.retryingConflicts(id, "the reachability change", async () => {
        const entry = this.options.table.get(id);
        if (entry === undefined || entry.record.unreachable === unreachable) return;
        await this.commit([{ put: { ...entry.record, unreachable }, expectedRevision: entry.revision }]);
        this.options.log.info(
          { agentId: id, hostname: entry.record.hostname, reachable: unreachable === undefined },
          unreachable === undefined ? "agent reachable again" : `agent unreachable: ${unreachable}`,
        );
      }),
    );
  }

  /** Stops retrying and proposing, and waits for the commands under way. */
  async close(): Promise<void> {
    this.closed = true;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
    await this.queue.idle();
  }

  private async applyBeat(
    session: HeartbeatSession,
    beat: Beat,
    { serverTime, intervalMs }: Pick<BeatResult, "serverTime" | "intervalMs">,
  ): Promise<BeatResult> {
    const id = session.agentId;
    const entry = this.currentFor(session);
    const before = entry.record;
    if (!changedBy(before, beat)) return { serverTime, status: before.status, intervalMs };
    const status: AgentStatus = beat.leaving ? "offline" : "online";
    const after: AgentRecord = {
      ...before,
      ollamaVersion: beat.ollamaVersion ?? before.ollamaVersion,
      draining: beat.draining ?? before.draining,
      ...(inventoryChanged(before, beat) ? { inventory: beat.inventory, inventoryUpdatedAt: serverTime } : {}),
      status,
      streamConnected: true,
      livenessHeld: false,
    };
    // A change the store keeps carries the beat's time with it; one of the stream's presence alone (a
    // presence change that could not be written before) stays a change the store need not write.
    const stored =
      after.status !== before.status ||
      after.draining !== before.draining ||
      after.ollamaVersion !== before.ollamaVersion ||
      after.inventory !== before.inventory;
    const lastHeartbeat = stored ? (this.options.authority.lastBeat(id) ?? serverTime) : before.lastHeartbeat;
    await this.commit([{ put: { ...after, lastHeartbeat }, expectedRevision: entry.revision }]);
    if (before.status !== status) {
      this.options.log.info(
        { agentId: id, hostname: before.hostname, from: before.status, to: status },
        beat.leaving ? "agent left" : "agent back online",
      );
      this.options.observer?.transition({ from: before.status, to: status, reason: beat.leaving ? "leaving" : "heartbeat" });
    }
    return { serverTime, status, intervalMs };
  }

  private async commitTimeout(id: AgentId): Promise<void> {
    const entry = this.options.table.get(id);
    const { authority } = this.options;
    const overdueMs = authority.overdueMs(id);
    // Beaten meanwhile, deregistered, or offline already: nothing to do.
    if (entry === undefined || entry.record.status !== "online" || overdueMs === undefined) {
      this.unwrittenExpiries.delete(id);
      return;
    }
    const proposedAt = this.options.clock.monotonic();
    await this.commit([
      {
        put: {
          ...entry.record,
          status: "offline",
          streamConnected: this.sessions.has(id),
          livenessHeld: false,
          lastHeartbeat: authority.lastBeat(id) ?? entry.record.lastHeartbeat,
        },
        expectedRevision: entry.revision,
      },
    ]);
    this.unwrittenExpiries.delete(id);
    this.expiryDelayMs = EXPIRY_RETRY_MIN_MS;
    // How long past its deadline the agent was when the OFFLINE change became durable.
    const lateMs = overdueMs + (this.options.clock.monotonic() - proposedAt);
    this.options.log.info(
      { agentId: id, hostname: entry.record.hostname, reason: "timeout", lateMs },
      `agent offline: no heartbeat for ${authority.timeoutMs(id) / 1000} s`,
    );
    this.options.observer?.transition({ from: "online", to: "offline", reason: "timeout", lateMs });
  }

  /**
   * Commits whether the agent has a stream open, when the table shows otherwise. Nobody waits for it; one
   * that cannot be written is made good by the next beat (which sees the table still disagree).
   */
  private showPresence(id: AgentId): void {
    if (this.closed) return;
    void this.queue
      .run(id, () =>
        this.retryingConflicts(id, "the stream change", async () => {
          const entry = this.options.table.get(id);
          const connected = this.sessions.has(id);
          if (entry === undefined || entry.record.streamConnected === connected) return;
          await this.commit([{ put: { ...entry.record, streamConnected: connected }, expectedRevision: entry.revision }]);
        }),
      )
      .catch((error: unknown) => this.options.log.debug({ err: error, agentId: id }, "stream presence not written yet"));
  }

  /** The table's entry for the agent of an open session, or the error that ends the stream. */
  private currentFor(session: HeartbeatSession): StoredAgent {
    const entry = this.options.table.get(session.agentId);
    if (entry === undefined) throw agentNotFound(session.agentId, "call Register (with the same id), then beat again");
    if (this.sessions.get(session.agentId) !== session) {
      throw new RegistryError("aborted", `this Heartbeat stream for agent ${session.agentId} was superseded`);
    }
    return entry;
  }

  private current(id: AgentId): StoredAgent {
    const entry = this.options.table.get(id);
    if (entry === undefined) throw agentNotFound(id);
    return entry;
  }

  /** Runs `attempt` again on the table as it now is while another writer's change conflicts with it. */
  private async retryingConflicts<T>(id: AgentId, what: string, attempt: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof StoreConflict)) throw error;
        // The store feeds a commit to the table before it answers, so the table already holds the change
        // that won; deciding again on it may well succeed.
        if (tries >= CONFLICT_TRIES) {
          throw new RegistryError(
            "aborted",
            `${what} of agent ${id} lost ${tries} times in a row to concurrent changes of the same agent; retry`,
            { cause: error },
          );
        }
      }
    }
  }

  /** Commits `changes`; a store that cannot write becomes `unavailable`, naming the problem (and, in detail, the file). */
  private async commit(changes: readonly StoreChange[]): Promise<void> {
    try {
      await this.options.store.commit(changes);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      this.options.log.error({ err: error, changes: changes.length }, "store write failed; the change was not made");
      const outcome = "the change was not acknowledged: retry once the store is writable";
      throw new RegistryError("unavailable", `${error.problem}; ${outcome}`, { cause: error, detailedMessage: `${error.message}; ${outcome}` });
    }
  }

  /** Tries the timeouts that could not be written again, backing off (to 5 s) while the store keeps failing. */
  private retryExpiry(id: AgentId): void {
    this.unwrittenExpiries.add(id);
    if (this.closed || this.expiryTimer !== undefined) return;
    const delayMs = this.expiryDelayMs;
    this.expiryDelayMs = Math.min(delayMs * 2, EXPIRY_RETRY_MAX_MS);
    this.expiryTimer = this.options.clock.setTimer(delayMs, () => {
      this.expiryTimer = undefined;
      const ids = [...this.unwrittenExpiries];
      this.unwrittenExpiries.clear();
      for (const expiring of ids) this.expire(expiring);
    });
  }
}

/**
 * Whether a beat changes something callers see: the status, draining, the version, the stream's presence,
 * a hold of the offline guard (which a beat ends), or the inventory.
 */
function changedBy(record: AgentRecord, beat: Beat): boolean {
  return (
    record.livenessHeld ||
    record.status !== (beat.leaving ? "offline" : "online") ||
    (beat.ollamaVersion !== undefined && beat.ollamaVersion !== record.ollamaVersion) ||
    (beat.draining !== undefined && beat.draining !== record.draining) ||
    inventoryChanged(record, beat) ||
    !record.streamConnected
  );
}

/**
 * Whether a beat brings an inventory that differs from the agent's in any figure. One that differs only in
 * fast-moving figures is written too (the node sends those at most once per inventory interval), but it
 * is no visible change: watchers hear of it only with the next one that is.
 */
function inventoryChanged(record: AgentRecord, beat: Beat): boolean {
  return beat.inventory !== undefined && (record.inventory === undefined || !sameInventory(record.inventory, beat.inventory));
}
