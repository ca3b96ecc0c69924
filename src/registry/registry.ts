// The registry: the in-memory map of agents, the rules for registering, beating and leaving (including who
// holds an id: its agent secret, agent-secret.ts), liveness (through the LivenessTracker) and persistence
// (through the Store port). Knows nothing of wire formats, files or real time.

import { type AgentId, newAgentId } from "./agent-id.js";
import { type AgentSecrets, cryptoAgentSecrets } from "./agent-secret.js";
import type { AgentRecord, AgentStatus, AgentView } from "./agent.js";
import { type AgentFilter, type ListQuery, type Page, compareAgents, matches, pageOf } from "./agent-query.js";
import { type Clock, type Timer, systemClock } from "./clock.js";
import { LivenessTracker } from "./liveness-tracker.js";
import type { Registration } from "./registration.js";
import { RegistryError, agentNotFound } from "./registry-error.js";
import { type Store, type StoreChange, StoreError } from "./store.js";

import { Watcher, changeType } from "./watcher.js";

/** Where the registry reports state changes; pino's logger fits. */
export interface RegistryLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const silentLog: RegistryLog = { info() {}, warn() {}, error() {} };

export type TransitionReason = "registered" | "heartbeat" | "leaving" | "timeout" | "deregistered";

/** A change of an agent's status; "absent" is not being in the registry. */
export interface Transition {
  readonly from: AgentStatus | "absent";
  readonly to: AgentStatus | "absent";
  readonly reason: TransitionReason;
  /** For timeouts: how long after the deadline the transition fired. */
  readonly lateMs?: number;
}

/** Counters and gauges the registry feeds (metrics live outside the domain). */
export interface RegistryObserver {
  transition(transition: Transition): void;
}

export interface RegistryStats {
  readonly online: number;
  readonly offline: number;
  readonly streams: number;
  readonly watchers: number;
}

export interface RegistryOptions {
  readonly store: Store;
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  readonly clock?: Clock;
  /** Heartbeat-only changes are written at most once per this many ms (default 1000). */
  readonly flushIntervalMs?: number;
  readonly newId?: () => AgentId;
  readonly log?: RegistryLog;
  /** Events a watcher may fall behind before it is cut off (default 1024). */
  readonly watchQueueLimit?: number;
  readonly observer?: RegistryObserver;
  /** Makes and checks agent secrets (default: 32 random bytes, SHA-256). */
  readonly secrets?: AgentSecrets;
  /**
   * Whether Register, Heartbeat and Deregister of an id that holds a secret need that secret. The server
   * turns this on with authentication: without it anyone may do anything anyway. Secrets are issued and
   * stored either way, so turning authentication on later protects the agents registered before.
   */
  readonly enforceSecrets?: boolean;
}

/** What a Register did. */
export interface Registered {
  readonly agent: AgentView;
  /** The agent's new secret, when this Register gave the id one (its first); the registry keeps only its hash. */
  readonly secret: string | undefined;
}

/** Who asks to deregister an agent: the node itself (proven by its secret), or an admin. */
export interface DeregisterProof {
  readonly secret?: string | undefined;
  /** An admin may deregister any agent without its secret (that is how a lost secret's id is released). */
  readonly admin?: boolean | undefined;
}

/** One beat as the registry sees it: only what may change state. */
export interface Beat {
  readonly ollamaVersion?: string | undefined;
  readonly draining?: boolean | undefined;
  readonly leaving: boolean;
}

export interface BeatResult {
  readonly serverTime: number;
  readonly status: AgentStatus;
}

/** The registry's side of one open Heartbeat stream. */
export interface HeartbeatSession {
  readonly agentId: AgentId;
  /** Applies one beat; resolves after the change is durable when the status changed. */
  beat(beat: Beat): BeatResult | Promise<BeatResult>;
  /** The transport closed (without `leaving`, this is not a leave: the agent keeps its deadline). */
  close(): void;
}

interface Entry {
  record: AgentRecord;
  /** Missed beats and the deadline count from here: the last beat, or start-up if that was later. */
  since: number;
  session: Session | undefined;
}

export class Registry {
  private readonly entries = new Map<AgentId, Entry>();
  private readonly tracker: LivenessTracker<AgentId>;
  private readonly clock: Clock;
  private readonly store: Store;
  private readonly log: RegistryLog;
  private readonly newId: () => AgentId;
  private readonly flushIntervalMs: number;
  /** Agents whose heartbeat-only changes wait for the next lazy flush. */
  private readonly dirty = new Set<AgentId>();
  /** Agents whose last status change failed to write: their beats are acknowledged only once it is durable. */
  private readonly unsavedStatus = new Set<AgentId>();
  private flushTimer: Timer | undefined;
  private sorted: AgentRecord[] | undefined;
  private closed = false;
  private readonly watchers = new Set<Watcher>();
  private readonly watchQueueLimit: number;
  private readonly observer: RegistryObserver | undefined;
  private readonly secrets: AgentSecrets;
  private readonly enforceSecrets: boolean;
  /** Counts visible changes; every watch event carries the revision it made. */
  private revision = 0;

  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;

  private constructor(options: RegistryOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLog;
    this.newId = options.newId ?? newAgentId;
    this.flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.watchQueueLimit = options.watchQueueLimit ?? 1024;
    this.observer = options.observer;
    this.secrets = options.secrets ?? cryptoAgentSecrets;
    this.enforceSecrets = options.enforceSecrets ?? false;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs;
    this.agentTimeoutMs = options.agentTimeoutMs;
    this.tracker = new LivenessTracker(this.clock, (id, deadline) => this.expire(id, deadline));
  }

  /**
   * Loads the store and starts tracking. Agents restored as online get a grace of one timeout from now:
   * a restart never marks the fleet offline.
   */
  static async open(options: RegistryOptions): Promise<Registry> {
    const records = await options.store.load();
    const registry = new Registry(options);
    const start = registry.clock.now();
    for (const record of records) {
      // Restored ONLINE agents get their grace from start-up; OFFLINE ones keep counting from their last beat.
      const since = record.status === "online" ? Math.max(record.lastHeartbeat, start) : record.lastHeartbeat;
      registry.entries.set(record.id, { record, since, session: undefined });
      if (record.status === "online") registry.tracker.expireAt(record.id, since + registry.agentTimeoutMs);
    }
    return registry;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Counts for gauges; a scan of the fleet, meant for a scrape now and then, not for a hot path. */
  stats(): RegistryStats {
    let online = 0;
    let streams = 0;
    for (const entry of this.entries.values()) {
      if (entry.record.status === "online") online++;
      if (entry.session !== undefined) streams++;
    }
    return { online, offline: this.entries.size - online, streams, watchers: this.watchers.size };
  }

  /**
   * Creates or updates an agent; resolves once it is durable. `peerAddress` fills an empty ip_address.
   * `secret` is the agent's secret, needed (when enforced) to register an id that holds one again.
   */
  async register(registration: Registration, peerAddress: string | undefined, secret?: string): Promise<Registered> {
    const ipAddress = registration.ipAddress ?? peerAddress;
    if (ipAddress === undefined) {
      throw new RegistryError(
        "invalidArgument",
        "ip_address: is required when the server cannot see the caller's address (e.g. behind a proxy)",
      );
    }
    const id = registration.id ?? this.newId();
    const now = this.clock.now();
    const existing = this.entries.get(id);
    if (existing !== undefined) this.checkSecret(existing, secret, "Register");
    // An id without a secret gets one now: a new agent, or one from before secrets existed (trust on
    // first use: whoever registers it first from now on holds it).
    const issued = existing?.record.secretHash === undefined ? this.secrets.issue() : undefined;
    const before = existing === undefined ? undefined : this.view(existing, now);
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
      secretHash: existing?.record.secretHash ?? issued?.hash,
    };
    if (existing?.record.hostname !== record.hostname) this.sorted = undefined;
    const entry: Entry = existing ?? { record, since: now, session: undefined };
    entry.record = record;
    entry.since = now;
    this.entries.set(id, entry);
    this.dirty.delete(id);
    this.tracker.expireAt(id, now + this.agentTimeoutMs);
    this.publish(before, this.view(entry, now));

    try {
      await this.commit([{ put: record }]);
    } catch (error) {
      // A new agent whose registration was not acknowledged is taken back: a caller without an id never
      // learned this one, and its retry must not leave an orphan behind. (An update of a known agent
      // stays: retrying it with the same id changes nothing.)
      if (existing === undefined && this.entries.get(id) === entry && entry.record === record) this.forgetNew(entry);
      // Nobody learned the secret issued to a known agent: take it back, so the retry gets one again.
      else if (issued !== undefined && this.entries.get(id) === entry && entry.record.secretHash === issued.hash) {
        entry.record = { ...entry.record, secretHash: undefined };
        this.commitInBackground([{ put: entry.record }]);
      }
      if (existing !== undefined) this.unsavedStatus.add(id);
      throw error;
    }
    this.unsavedStatus.delete(id);

    // Liveness counts from the acknowledgement, so a slow disk never eats into the node's first interval.
    const ackedAt = this.clock.now();
    if (this.entries.get(id) === entry && entry.record.status === "online") {
      entry.record = { ...entry.record, lastHeartbeat: ackedAt };
      entry.since = ackedAt;
      this.tracker.expireAt(id, ackedAt + this.agentTimeoutMs);
    }
    this.log.info(
      { agentId: id, hostname: record.hostname, address: `${record.ipAddress}:${record.port}` },
      existing === undefined ? "agent registered" : "agent re-registered",
    );
    const from = before?.status ?? "absent";
    if (from !== "online") this.observer?.transition({ from, to: "online", reason: "registered" });
    return { agent: this.view(entry, ackedAt), secret: issued?.secret };
  }

  get(id: AgentId): AgentView {
    const entry = this.entries.get(id);
    if (entry === undefined) throw agentNotFound(id);
    return this.view(entry, this.clock.now());
  }

  list(query: ListQuery): { agents: AgentView[]; nextPageToken: string } {
    const page: Page = pageOf(this.sortedMatching(query), query);
    const now = this.clock.now();
    return {
      agents: page.agents.map((record) => this.view(this.entries.get(record.id) as Entry, now)),
      nextPageToken: page.nextPageToken,
    };
  }

  /**
   * Subscribes to visible changes of the agents matching `filter`: first the current snapshot (as added
   * events), then one event per change. Close the watcher (or stop iterating) to unsubscribe.
   */
  watch(filter: AgentFilter, onEnd?: (reason: RegistryError | null) => void): Watcher {
    const watcher = new Watcher(filter, this.watchQueueLimit, (ended, reason) => {
      this.watchers.delete(ended);
      onEnd?.(reason);
    });
    const now = this.clock.now();
    watcher.begin(
      this.sortedMatching(filter).map((record) => this.view(this.entries.get(record.id) as Entry, now)),
      this.revision,
    );
    if (this.closed) watcher.fail(new RegistryError("unavailable", "the registry is shutting down; watch again"));
    else this.watchers.add(watcher);
    return watcher;
  }

  /**
   * Removes an agent; resolves once durable. Its open stream ends with notFound. When secrets are enforced
   * the caller proves it is the node (its secret) or an admin.
   */
  async deregister(id: AgentId, proof: DeregisterProof = {}): Promise<void> {
    const entry = this.entries.get(id);
    if (entry === undefined) throw agentNotFound(id);
    if (proof.admin !== true) {
      if (this.enforceSecrets && entry.record.secretHash === undefined) {
        throw new RegistryError(
          "permissionDenied",
          `agent ${id} has no secret yet (it was registered before this server issued secrets; it gets one at its next Register), so nothing proves the caller is that node: only an admin may deregister it`,
        );
      }
      this.checkSecret(entry, proof.secret, "Deregister");
    }
    const before = this.view(entry, this.clock.now());
    this.entries.delete(id);
    this.sorted = undefined;
    this.dirty.delete(id);
    this.unsavedStatus.delete(id);
    this.tracker.forget(id);
    entry.session?.end(new RegistryError("notFound", `agent ${id} was deregistered; register again to rejoin`));
    entry.session = undefined;
    this.publish(before, undefined);
    this.observer?.transition({ from: before.status, to: "absent", reason: "deregistered" });
    await this.commit([{ delete: id }]);
    this.log.info({ agentId: id, hostname: entry.record.hostname }, "agent deregistered");
  }

  /**
   * Opens the registry's side of a Heartbeat stream. A previous stream of the same agent is superseded:
   * `end` of that one is called with an aborted error. `end` of this one is called if the registry ends
   * it (superseded, deregistered). `secret` is the agent's secret, needed (when enforced) if it holds one.
   */
  openHeartbeat(id: AgentId, end: (reason: RegistryError) => void, secret?: string): HeartbeatSession {
    const entry = this.entries.get(id);
    if (entry === undefined) throw agentNotFound(id, "call Register (with the same id), then beat again");
    if (this.enforceSecrets && entry.record.secretHash === undefined) {
      // Nothing proves the caller is that node; its Register (which the daemon always sends first) gives it a secret.
      throw new RegistryError(
        "permissionDenied",
        `agent ${id} has no secret yet (registered before this server issued secrets): call Register for it first, then open the Heartbeat stream with the agent_secret it returns`,
      );
    }
    this.checkSecret(entry, secret, "a Heartbeat stream");
    const previous = entry.session;
    const before = previous === undefined ? this.view(entry, this.clock.now()) : undefined;
    const session = new Session(this, id, end);
    entry.session = session;
    if (before !== undefined) this.publish(before, this.view(entry, this.clock.now()));
    if (previous !== undefined) {
      this.log.info({ agentId: id }, "heartbeat stream superseded by a newer one");
      previous.end(
        new RegistryError("aborted", `superseded by a newer Heartbeat stream for agent ${id}; only the newest is kept`),
      );
    }
    return session;
  }

  /** @internal Called by Session. */
  applyBeat(session: Session, beat: Beat): BeatResult | Promise<BeatResult> {
    const entry = this.entries.get(session.agentId);
    if (entry === undefined || entry.session !== session) {
      throw entry === undefined
        ? agentNotFound(session.agentId, "call Register (with the same id), then beat again")
        : new RegistryError("aborted", `this Heartbeat stream for agent ${session.agentId} was superseded`);
    }
    const now = this.clock.now();
    const before = entry.record;
    const status: AgentStatus = beat.leaving ? "offline" : "online";
    const visible =
      before.status !== status ||
      (beat.ollamaVersion !== undefined && beat.ollamaVersion !== before.ollamaVersion) ||
      (beat.draining !== undefined && beat.draining !== before.draining);
    const beforeView = visible ? this.view(entry, now) : undefined;
    entry.record = {
      ...before,
      ollamaVersion: beat.ollamaVersion ?? before.ollamaVersion,
      draining: beat.draining ?? before.draining,
      status,
      lastHeartbeat: now,
    };
    entry.since = now;
    if (beat.leaving) this.tracker.forget(session.agentId);
    else this.tracker.expireAt(session.agentId, now + this.agentTimeoutMs);
    if (beforeView !== undefined) this.publish(beforeView, this.view(entry, now));

    const id = session.agentId;
    if (before.status === status && !this.unsavedStatus.has(id)) {
      this.markDirty(id);
      return { serverTime: now, status };
    }
    if (before.status !== status) {
      this.log.info(
        { agentId: id, hostname: before.hostname, from: before.status, to: status },
        beat.leaving ? "agent left" : "agent back online",
      );
      this.observer?.transition({ from: before.status, to: status, reason: beat.leaving ? "leaving" : "heartbeat" });
    }
    // A status change is acknowledged only once durable; so is every beat after one that failed to write.
    this.dirty.delete(id);
    return this.commit([{ put: entry.record }]).then(
      () => {
        this.unsavedStatus.delete(id);
        return { serverTime: now, status };
      },
      (error: unknown) => {
        this.unsavedStatus.add(id);
        throw error;
      },
    );
  }

  /** @internal Called by Session. */
  detach(session: Session): void {
    const entry = this.entries.get(session.agentId);
    if (entry?.session !== session) return;
    const now = this.clock.now();
    const before = this.view(entry, now);
    entry.session = undefined;
    this.publish(before, this.view(entry, now));
  }

  /**
   * Stops judging liveness: from here on no agent turns OFFLINE by timeout. The first step of a shutdown,
   * since streams are about to end and agents cannot beat until they reach the next server, which gives
   * them a fresh grace period.
   */
  stopLiveness(): void {
    this.tracker.close();
  }

  /** Stops timers and writes what the lazy flush still holds. */
  async close(): Promise<void> {
    this.closed = true;
    for (const watcher of [...this.watchers]) {
      watcher.fail(new RegistryError("unavailable", "the registry is shutting down; watch again"));
    }
    this.tracker.close();
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    if (this.dirty.size > 0) await this.commit([]);
  }

  private expire(id: AgentId, deadline: number): void {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.record.status !== "online") return;
    const now = this.clock.now();
    const before = this.view(entry, now);
    entry.record = { ...entry.record, status: "offline" };
    this.publish(before, this.view(entry, now));
    this.dirty.delete(id);
    const lateMs = now - deadline;
    this.log.info(
      { agentId: id, hostname: entry.record.hostname, reason: "timeout", lateMs },
      `agent offline: no heartbeat for ${this.agentTimeoutMs / 1000} s`,
    );
    this.observer?.transition({ from: "online", to: "offline", reason: "timeout", lateMs });
    this.commitInBackground([{ put: entry.record }]);
  }

  /** Records matching `filter`, sorted by hostname then id. */
  private sortedMatching(filter: AgentFilter): AgentRecord[] {
    this.sorted ??= [...this.entries.values()].map((entry) => entry.record).sort(compareAgents);
    // `sorted` holds the records of its time (hostnames only change through register, which resets it);
    // statuses and labels are read from the live entries.
    const matching: AgentRecord[] = [];
    for (const stale of this.sorted) {
      const record = (this.entries.get(stale.id) as Entry).record;
      if (matches(record, filter)) matching.push(record);
    }
    return matching;
  }

  /** Tells every watcher about a visible change (and nothing when the change is not visible). */
  private publish(before: AgentView | undefined, after: AgentView | undefined): void {
    const type = changeType(before, after);
    if (type === undefined) return;
    this.revision++;
    for (const watcher of this.watchers) watcher.offer(before, after, type, this.revision);
  }

  /**
   * Refuses `what` unless `secret` is the agent's (when enforced). An agent without a stored secret passes:
   * it gets one at its next Register.
   */
  private checkSecret(entry: Entry, secret: string | undefined, what: string): void {
    const hash = entry.record.secretHash;
    if (!this.enforceSecrets || hash === undefined) return;
    const missing = secret === undefined || secret === "";
    if (!missing && this.secrets.matches(secret, hash)) return;
    const id = entry.record.id;
    throw new RegistryError(
      "permissionDenied",
      `agent ${id} is held by another node's secret: ${what} of this id needs the agent_secret its first Register returned, and ${missing ? "none was sent" : "the one sent does not match"}. ` +
        `A node that lost its secret (its state file) cannot get it back: an admin deregisters ${id} to release the id (agent-registry deregister ${id} with an admin token), then the node registers again`,
    );
  }

  /** The record as callers see it: live facts added, the secret's hash left out. */
  private view(entry: Entry, now: number): AgentView {
    const record = entry.record;
    return {
      id: record.id,
      hostname: record.hostname,
      ipAddress: record.ipAddress,
      port: record.port,
      ollamaVersion: record.ollamaVersion,
      status: record.status,
      lastHeartbeat: record.lastHeartbeat,
      registeredAt: record.registeredAt,
      labels: record.labels,
      draining: record.draining,
      streamConnected: entry.session !== undefined,
      missedHeartbeats: Math.max(0, Math.floor((now - entry.since) / this.heartbeatIntervalMs)),
    };
  }

  private markDirty(id: AgentId): void {
    this.dirty.add(id);
    if (this.closed) return;
    this.flushTimer ??= this.clock.setTimer(this.flushIntervalMs, () => {
      this.flushTimer = undefined;
      // A status change may have written the pending beats already.
      if (this.dirty.size === 0) return;
      this.commitInBackground([]);
    });
  }

  /** A commit nobody waits for; a failure is logged by commit() and retried with the next write. */
  private commitInBackground(changes: StoreChange[]): void {
    this.commit(changes).catch((error: unknown) => {
      if (!(error instanceof RegistryError)) this.log.error({ err: error }, "unexpected error while writing the store");
    });
  }

  private forgetNew(entry: Entry): void {
    const id = entry.record.id;
    const before = this.view(entry, this.clock.now());
    this.entries.delete(id);
    this.sorted = undefined;
    this.dirty.delete(id);
    this.unsavedStatus.delete(id);
    this.tracker.forget(id);
    entry.session?.end(agentNotFound(id, "its registration was not written; register again"));
    this.publish(before, undefined);
    // The store still holds the put for its retry; the delete rides along with it.
    this.commitInBackground([{ delete: id }]);
  }

  /** Commits `changes` together with every pending heartbeat-only change. */
  private async commit(changes: StoreChange[]): Promise<void> {
    const pending: StoreChange[] = [];
    for (const id of this.dirty) {
      const entry = this.entries.get(id);
      if (entry !== undefined) pending.push({ put: entry.record });
    }
    this.dirty.clear();
    try {
      await this.store.commit([...pending, ...changes]);
    } catch (error) {
      if (!(error instanceof StoreError)) throw error;
      this.log.error({ err: error, changes: changes.length }, "store write failed; the changes stay pending");
      throw new RegistryError(
        "unavailable",
        `${error.message}; the change was not acknowledged: retry once the store is writable`,
        { cause: error },
      );
    }
  }
}

class Session implements HeartbeatSession {
  constructor(
    private readonly registry: Registry,
    readonly agentId: AgentId,
    readonly end: (reason: RegistryError) => void,
  ) {}

  beat(beat: Beat): BeatResult | Promise<BeatResult> {
    return this.registry.applyBeat(this, beat);
  }

  close(): void {
    this.registry.detach(this);
  }
}
