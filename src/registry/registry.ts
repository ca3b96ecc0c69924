// The registry: wires the agent table (what the store committed), the command layer (which proposes
// changes), the liveness authority (deadlines) and the change feed (watchers) around one Store, and offers
// the calls the server makes. Knows nothing of wire formats, files or real time; owns no rule itself.

import { type Clock, serverClock } from "../common/clock.js";
import { type Log, silentLog } from "../common/log.js";
import { type AgentId, newAgentId } from "./agent-id.js";
import { type AgentSecrets, cryptoAgentSecrets } from "./agent-secret.js";
import type { AgentRecord, AgentView } from "./agent.js";
import type { AgentFilter, ListQuery, Page } from "./agent-query.js";
import { AgentCommands, type Registered } from "./agent-commands.js";
import { AgentTable } from "./agent-table.js";
import { BeatFlusher } from "./beat-flusher.js";
import { ChangeFeed } from "./change-feed.js";
import { EncodedAgents } from "./encoded-agents.js";
import { FleetCap, type FleetCapSettings } from "./fleet-cap.js";
import type { HeartbeatSession } from "./heartbeat-session.js";
import { type DeregisterProof, IdOwnership } from "./id-ownership.js";
import { LivenessAuthority } from "./liveness-authority.js";
import type { HoldState, OfflineGuardSettings } from "./offline-guard.js";
import type { Registration } from "./registration.js";
import { RegistryError, agentNotFound } from "./registry-error.js";
import type { Store } from "./store.js";
import type { RegistryObserver } from "./transitions.js";
import type { Watcher } from "./watcher.js";

export interface RegistryStats {
  readonly online: number;
  readonly offline: number;
  readonly streams: number;
  readonly watchers: number;
  /** Agents the offline guard holds ONLINE past their deadline, and whether a hold is under way. */
  readonly held: number;
  readonly guardActive: boolean;
  /** The heartbeat interval agents are told now (ms). */
  readonly toldIntervalMs: number;
}

export interface RegistryOptions {
  readonly store: Store;
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  readonly clock?: Clock;
  /** Heartbeat-only changes go to the store at most once per this many ms (default 1000). */
  readonly flushIntervalMs?: number;
  readonly newId?: () => AgentId;
  readonly log?: Log;
  /**
   * Events a watcher may fall behind before it is cut off (default 1024), or the fleet's size if larger:
   * one change to every agent at once must not cut off a watcher that keeps up.
   */
  readonly watchQueueLimit?: number;
  readonly observer?: RegistryObserver;
  /** Makes and checks agent secrets (default: 32 random bytes, SHA-256). */
  readonly secrets?: AgentSecrets;
  /**
   * Whether Register, Heartbeat and Deregister of an id that holds a secret need that secret. The server
   * turns this on with authentication: without it anyone may do anything anyway.
   */
  readonly enforceSecrets?: boolean;
  /** Fleet-wide beats per second at most, by stretching the interval told to agents (0, the default: no cap). */
  readonly maxBeatsPerSecond?: number;
  /** The most agents held at once; a Register of a new id past it is refused (default: no cap). */
  readonly fleetCap?: FleetCapSettings;
  /** The offline guard (default: on, at the design's defaults; share 0 turns it off). */
  readonly offlineGuard?: OfflineGuardSettings;
}

export class Registry {
  private readonly table: AgentTable;
  private readonly clock: Clock;
  private readonly authority: LivenessAuthority;
  private readonly feed: ChangeFeed;
  private readonly beats: BeatFlusher;
  private readonly commands: AgentCommands;
  private readonly unwatch: () => void;
  private readonly unfollowPeers: () => void;
  private closing: Promise<void> | undefined;

  /** Loads the store, then follows its commits and judges liveness (promoted: this process is the authority). */
  static async open(options: RegistryOptions): Promise<Registry> {
    return new Registry(options, await options.store.load());
  }

  private constructor(options: RegistryOptions, snapshot: Awaited<ReturnType<Store["load"]>>) {
    const clock = options.clock ?? serverClock;
    this.clock = clock;
    const log = options.log ?? silentLog;
    const peers = options.store.peers;
    this.table = new AgentTable(snapshot);
    this.authority = new LivenessAuthority({
      clock,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      agentTimeoutMs: options.agentTimeoutMs,
      maxBeatsPerSecond: options.maxBeatsPerSecond,
      offlineGuard: options.offlineGuard,
      log,
      onExpired: (id) => this.commands.expire(id),
      onHeld: (id) => this.commands.hold(id),
      onBeat: (id, timeoutMs) => peers?.beat(id, timeoutMs),
    });
    const queueLimit = options.watchQueueLimit ?? 1024;
    this.feed = new ChangeFeed(
      (record) => this.view(record),
      () => Math.max(queueLimit, this.table.size),
    );
    this.beats = new BeatFlusher(clock, options.flushIntervalMs ?? 1000, (id) => this.authority.lastBeat(id), (beats) =>
      options.store.saveBeats(beats),
    );
    this.commands = new AgentCommands({
      store: options.store,
      table: this.table,
      authority: this.authority,
      ownership: new IdOwnership(options.secrets ?? cryptoAgentSecrets, options.enforceSecrets ?? false),
      cap: new FleetCap(options.fleetCap, () => this.table.size),
      beats: this.beats,
      clock,
      log,
      observer: options.observer,
      newId: options.newId ?? newAgentId,
      view: (record) => this.view(record),
    });
    // Watchers first: a removed agent's last event still shows its liveness facts.
    this.table.onApply((change) => this.feed.publish(change));
    this.table.onApply(({ before, after }) => {
      if (after !== undefined) this.authority.follow(after);
      else if (before !== undefined) {
        this.authority.forget(before.id);
        this.beats.forget(before.id);
      }
    });
    for (const entry of this.table.values()) this.authority.follow(entry.record);
    // Replicas: an agent that turns OFFLINE or goes away needs no claim; one claimed by another replica is
    // judged there; one whose claim lapsed while no stream is here times out here (a conditional commit, so
    // of the replicas that all hear the lapse, one writes it).
    this.table.onApply(({ before, after }) => {
      if (before?.status === "online" && after?.status !== "online") peers?.release(before.id);
    });
    this.unfollowPeers =
      peers?.follow({
        claimed: (id, here) => {
          if (!here && !this.commands.holdsStream(id)) this.authority.judgedElsewhere(id);
        },
        lapsed: (id) => {
          const entry = this.table.get(id);
          if (entry === undefined || entry.record.status !== "online" || entry.record.livenessHeld) return;
          if (!this.commands.holdsStream(id)) this.authority.lapsed(id);
        },
      }) ?? (() => undefined);
    this.unwatch = options.store.watch(snapshot.revision, (commit) => this.table.apply(commit));
    this.authority.promote();
  }

  get size(): number {
    return this.table.size;
  }

  /** Counts for gauges; a scan of the fleet, meant for a scrape now and then, not for a hot path. */
  stats(): RegistryStats {
    let online = 0;
    for (const entry of this.table.values()) if (entry.record.status === "online") online++;
    return {
      online,
      offline: this.table.size - online,
      streams: this.commands.streams,
      watchers: this.feed.size,
      held: this.authority.heldCount,
      guardActive: this.authority.hold !== undefined,
      toldIntervalMs: this.authority.intervalMs,
    };
  }

  /** The heartbeat interval agents are told now (ms): the configured one, or longer past the beats-per-second cap. */
  get toldIntervalMs(): number {
    return this.authority.intervalMs;
  }

  /** The offline guard's hold under way (how many agents it holds, since when), or undefined. */
  get offlineHold(): (HoldState & { readonly held: number }) | undefined {
    return this.authority.hold;
  }

  register(registration: Registration, peerAddress: string | undefined, secret?: string): Promise<Registered> {
    return this.commands.register(registration, peerAddress, secret);
  }

  get(id: AgentId): AgentView {
    const entry = this.table.get(id);
    if (entry === undefined) throw agentNotFound(id);
    return this.view(entry.record);
  }

  list(query: ListQuery): { agents: AgentView[]; nextPageToken: string } {
    const page = this.table.page(query);
    return { agents: page.agents.map((record) => this.view(record)), nextPageToken: page.nextPageToken };
  }

  /** A cache of each agent's record as `encode` makes it, kept in step with the agents as they change. */
  encodedAgents<E>(encode: (record: AgentRecord) => E): EncodedAgents<E> {
    return new EncodedAgents(this.table, encode);
  }

  /** The page list() gives, as records: read them with forEachEncoded(), all at once or a slice at a time. */
  listRecords(query: ListQuery): Page {
    return this.table.page(query);
  }

  /**
   * Visits records[from, to) (from listRecords), each as its cached encoding in `encoded` and its liveness
   * facts now, without making an object per agent: what a read of the whole fleet does, agent by agent.
   */
  forEachEncoded<E>(
    records: readonly AgentRecord[],
    from: number,
    to: number,
    encoded: EncodedAgents<E>,
    visit: (encoded: E, lastHeartbeat: number, missedHeartbeats: number) => void,
  ): void {
    const now = this.clock.monotonic(); // one reading for them all
    for (let i = from; i < to; i++) {
      const record = records[i] as AgentRecord;
      visit(encoded.of(record), this.authority.lastBeat(record.id) ?? record.lastHeartbeat, this.authority.missed(record.id, now));
    }
  }

  /**
   * Subscribes to visible changes of the agents matching `filter`: first the current snapshot (as added
   * events), then one event per committed change. Close the watcher (or stop iterating) to unsubscribe.
   */
  watch(filter: AgentFilter, onEnd?: (reason: RegistryError | null) => void): Watcher {
    return this.feed.subscribe(filter, this.table.sortedMatching(filter), this.table.revision, onEnd);
  }

  /** The ONLINE agents and the address their Ollama listens on: what the reachability probe visits. */
  probeTargets(): Array<{ readonly id: AgentId; readonly ipAddress: string; readonly port: number }> {
    const targets: Array<{ id: AgentId; ipAddress: string; port: number }> = [];
    for (const { record } of this.table.values()) {
      if (record.status === "online") targets.push({ id: record.id, ipAddress: record.ipAddress, port: record.port });
    }
    return targets;
  }

  /** Records the reachability probe's verdict (undefined: reachable; else why not). */
  setReachability(id: AgentId, unreachable: string | undefined): Promise<void> {
    return this.commands.setReachability(id, unreachable);
  }

  deregister(id: AgentId, proof: DeregisterProof = {}): Promise<void> {
    return this.commands.deregister(id, proof);
  }

  openHeartbeat(id: AgentId, end: (reason: RegistryError) => void, secret?: string): HeartbeatSession {
    return this.commands.openHeartbeat(id, end, secret);
  }

  /**
   * Stops judging liveness: from here on no agent turns OFFLINE by timeout. The first step of a shutdown,
   * since streams are about to end and agents cannot beat until they reach the next server, which gives
   * them a fresh grace period.
   */
  stopLiveness(): void {
    this.authority.demote();
  }

  /** Ends watches, lets commands under way finish, and hands pending beat times to the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.feed.close(new RegistryError("unavailable", "the registry is shutting down; watch again"));
      this.authority.demote();
      await this.commands.close();
      this.beats.close();
      this.unfollowPeers();
      this.unwatch();
    })();
    return this.closing;
  }

  /** The record as callers see it: the liveness facts added, the secret's hash left out. */
  private view(record: AgentRecord): AgentView {
    return {
      id: record.id,
      hostname: record.hostname,
      ipAddress: record.ipAddress,
      port: record.port,
      ollamaVersion: record.ollamaVersion,
      status: record.status,
      registeredAt: record.registeredAt,
      labels: record.labels,
      draining: record.draining,
      streamConnected: record.streamConnected,
      livenessHeld: record.livenessHeld,
      inventory: record.inventory,
      inventoryUpdatedAt: record.inventoryUpdatedAt,
      unreachable: record.unreachable,
      ...this.livenessOf(record),
    };
  }

  /** What the liveness authority knows of the agent now: its last beat (wall) and its missed beats. */
  private livenessOf(record: AgentRecord, monotonicNow = this.clock.monotonic()): { lastHeartbeat: number; missedHeartbeats: number } {
    return {
      lastHeartbeat: this.authority.lastBeat(record.id) ?? record.lastHeartbeat,
      missedHeartbeats: this.authority.missed(record.id, monotonicNow),
    };
  }
}
