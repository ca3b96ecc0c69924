// The Store port on etcd, for several replicas sharing one cluster. Records are `<prefix>agents/<id>`
// (etcd-keys.ts); a record's revision is its etcd mod_revision, so revisions are cluster-wide and rising. A
// commit is one Txn whose compares are `mod_revision == expected` (0: the key does not exist), a quorum write
// before it resolves, and it resolves once this replica's watch has fed it to the table; a failed compare is
// a StoreConflict, answered once the watch caught up with the change that won. One Watch stream on the
// whole prefix feeds the table and the lease keys (etcd-leases.ts); it is opened again from the last revision
// seen when it breaks, and a compacted revision makes it read everything again. Beat times go lazily, in
// batches of conditional puts. etcd not answering is a StoreError naming etcd and its endpoints.

import { create } from "@bufbuild/protobuf";
import { type Log, silentLog } from "../common/log.js";
import type { AgentId } from "../registry/agent-id.js";
import type { AgentRecord } from "../registry/agent.js";
import {
  ABSENT,
  type Commit,
  type CommittedChange,
  type Store,
  StoreConflict,
  type StoreChange,
  StoreError,
  type StoreObserver,
  type StoreSnapshot,
  type StoredAgent,
} from "../registry/store.js";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  type Event,
  Event_EventType,
  type KeyValue,
  type WatchResponse,
  WatchRequestSchema,
} from "../../gen/etcd/etcdserverpb/rpc_pb.js";
import { EtcdClient, EtcdUnreachable } from "./etcd-client.js";
import { EtcdKeys, decodeRecord, encodeRecord, rangeEnd, text } from "./etcd-keys.js";
import { EtcdLeases } from "./etcd-leases.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RequestOpSchema, CompareSchema } from "../../gen/etcd/etcdserverpb/rpc_pb.js";

export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  /** Key prefix, e.g. /agent-registry/ */
  readonly prefix: string;
  readonly observer?: StoreObserver | undefined;
  readonly log?: Log | undefined;
  /** How often beat times are written (default 1 s). */
  readonly beatPaceMs?: number | undefined;
}

/** How long a commit etcd made may wait for this replica's watch to deliver it. */
const WATCH_CATCH_UP_MS = 5000;
/** A broken watch is opened again after this long. */
const WATCH_RETRY_MS = 200;
/** Agents whose beat times go in one Txn (etcd takes 128 operations per Txn by default). */
const BEAT_BATCH = 64;

interface Waiter {
  readonly revision: number;
  readonly resolve: () => void;
}

export class EtcdStore implements Store {
  readonly location: string;
  readonly peers: EtcdLeases;
  private readonly client: EtcdClient;
  private readonly keys: EtcdKeys;
  private readonly log: Log;
  /** Every record as the watch last delivered it. */
  private readonly known = new Map<AgentId, StoredAgent>();
  private loadedAt = -1;
  /** The revision the watch has fed to watchers. */
  private delivered = 0;
  private readonly subscribers = new Set<(commit: Commit) => void>();
  private waiters: Waiter[] = [];
  private watchStream: ReturnType<EtcdClient["watch"]> | undefined;
  private watchRetry: NodeJS.Timeout | undefined;
  private readonly pendingBeats = new Map<AgentId, number>();
  private beatTimer: NodeJS.Timeout | undefined;
  private beatsWriting: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: EtcdStoreOptions) {
    this.client = new EtcdClient(options.endpoints);
    this.keys = new EtcdKeys(options.prefix);
    this.log = options.log ?? silentLog;
    this.location = `etcd at ${this.client.endpoints} (prefix ${options.prefix})`;
    this.peers = new EtcdLeases(this.client, this.keys, this.log);
  }

  async load(): Promise<StoreSnapshot> {
    const { agents, revision } = await this.readAll();
    this.loadedAt = revision;
    this.delivered = revision;
    this.openWatch();
    this.peers.start();
    return { agents, revision };
  }

  async commit(changes: readonly StoreChange[]): Promise<Commit> {
    if (this.loadedAt < 0) throw new StoreError(`${this.location} was not loaded`);
    const compares: MessageInitShape<typeof CompareSchema>[] = [];
    const success: MessageInitShape<typeof RequestOpSchema>[] = [];
    const failure: MessageInitShape<typeof RequestOpSchema>[] = [];
    for (const change of changes) {
      const id = "put" in change ? change.put.id : change.delete;
      const key = this.keys.agent(id);
      if (change.expectedRevision !== undefined) {
        compares.push(modRevisionIs(key, change.expectedRevision));
        failure.push({ request: { case: "requestRange", value: { key } } });
      }
      success.push(
        "put" in change
          ? { request: { case: "requestPut", value: { key, value: encodeRecord(change.put) } } }
          : { request: { case: "requestDeleteRange", value: { key } } },
      );
    }
    const started = performance.now();
    let response;
    try {
      response = await this.client.txn({ compare: compares, success, failure });
    } catch (error) {
      throw this.failed(error, started);
    }
    this.options.observer?.written({ ok: true, durationMs: performance.now() - started, bytes: 0 });
    const revision = Number(response.header?.revision ?? 0n);
    if (!response.succeeded) {
      const conflict = this.conflictOf(changes, response.responses.map((op) => (op.response.case === "responseRange" ? op.response.value.kvs[0] : undefined)));
      if (conflict.actualRevision !== ABSENT) await this.caughtUp(conflict.actualRevision);
      throw conflict;
    }
    await this.caughtUp(revision);
    const committed: CommittedChange[] = changes.map((change) =>
      "put" in change ? { id: change.put.id, record: change.put } : { id: change.delete, record: undefined },
    );
    return { revision, changes: committed };
  }

  saveBeats(beats: ReadonlyMap<AgentId, number>): void {
    if (this.closed) return;
    for (const [id, at] of beats) this.pendingBeats.set(id, at);
    this.beatTimer ??= setTimeout(() => {
      this.beatTimer = undefined;
      this.beatsWriting = this.writeBeats();
    }, this.options.beatPaceMs ?? 1000);
  }

  watch(fromRevision: number, onCommit: (commit: Commit) => void): () => void {
    if (this.loadedAt < 0) throw new StoreError(`${this.location} was not loaded`);
    if (fromRevision < this.delivered) {
      throw new StoreError(`${this.location}: commits after revision ${fromRevision} were already delivered; load again`);
    }
    this.subscribers.add(onCommit);
    return () => this.subscribers.delete(onCommit);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.beatTimer);
    this.beatTimer = undefined;
    await this.beatsWriting;
    if (this.pendingBeats.size > 0) await this.writeBeats();
    this.closed = true;
    clearTimeout(this.watchRetry);
    this.watchStream?.cancel();
    this.peers.close();
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters = [];
    this.client.close();
  }

  /** Every record and lease key, read at one revision. */
  private async readAll(): Promise<{ agents: StoredAgent[]; revision: number }> {
    try {
      const agents = await this.client.range({ key: this.keys.agents, rangeEnd: rangeEnd(this.keys.agents) });
      const revision = agents.header?.revision ?? 0n;
      const leases = await this.client.range({ key: this.keys.leases, rangeEnd: rangeEnd(this.keys.leases), revision });
      const stored: StoredAgent[] = [];
      this.known.clear();
      for (const kv of agents.kvs) {
        let record: AgentRecord;
        try {
          record = decodeRecord(kv.key, kv.value);
        } catch (error) {
          throw new StoreError(`${this.location}: ${text(kv.key)} is not a valid agent record (${(error as Error).message}); fix or delete that key`, {
            cause: error,
            problem: "a record in etcd is not valid",
          });
        }
        const entry = { record, revision: Number(kv.modRevision) };
        stored.push(entry);
        this.known.set(record.id, entry);
      }
      for (const kv of leases.kvs) {
        const parsed = this.keys.parse(kv.key);
        if (parsed !== undefined) this.peers.changed(parsed.id, text(kv.value));
      }
      return { agents: stored, revision: Number(revision) };
    } catch (error) {
      if (error instanceof EtcdUnreachable) throw this.unreachable(error);
      throw error;
    }
  }

  private openWatch(): void {
    if (this.closed) return;
    const stream = this.client.watch();
    this.watchStream = stream;
    const again = (): void => {
      if (this.watchStream !== stream || this.closed) return;
      this.watchStream = undefined;
      this.watchRetry = setTimeout(() => this.openWatch(), WATCH_RETRY_MS);
    };
    stream.on("data", (response: WatchResponse) => {
      if (response.compactRevision > 0n) {
        this.log.warn({ compactRevision: Number(response.compactRevision) }, "etcd compacted past this replica's watch; reading every record again");
        stream.cancel();
        void this.resync().finally(again);
        return;
      }
      if (response.canceled) {
        stream.cancel();
        return;
      }
      this.deliver(response.events);
    });
    stream.on("error", (error: Error) => {
      this.log.debug({ err: error }, "etcd watch broke; watching again from the last revision seen");
      this.peers.trouble();
      again();
    });
    stream.on("end", again);
    stream.write(
      create(WatchRequestSchema, {
        requestUnion: {
          case: "createRequest",
          value: { key: bytes(this.options.prefix), rangeEnd: rangeEnd(bytes(this.options.prefix)), startRevision: BigInt(this.delivered + 1) },
        },
      }),
    );
  }

  /** Events of one watch response: grouped by revision (one Txn each), fed in order. */
  private deliver(events: readonly Event[]): void {
    let revision = -1;
    let changes: CommittedChange[] = [];
    const flush = (): void => {
      if (revision > this.delivered) {
        this.delivered = revision;
        if (changes.length > 0) {
          const commit = { revision, changes };
          for (const subscriber of this.subscribers) subscriber(commit);
        }
        this.wake();
      }
      changes = [];
    };
    for (const event of events) {
      const kv = event.kv;
      if (kv === undefined) continue;
      const at = Number(kv.modRevision);
      if (at !== revision) {
        flush();
        revision = at;
      }
      if (at <= this.delivered) continue;
      const parsed = this.keys.parse(kv.key);
      if (parsed === undefined) continue;
      const put = event.type === Event_EventType.PUT;
      if (parsed.kind === "lease") {
        this.peers.changed(parsed.id, put ? text(kv.value) : undefined);
        continue;
      }
      const change = this.changeOf(parsed.id, put, kv);
      if (change !== undefined) changes.push(change);
    }
    flush();
  }

  private changeOf(id: AgentId, put: boolean, kv: KeyValue): CommittedChange | undefined {
    if (!put) {
      this.known.delete(id);
      return { id, record: undefined };
    }
    try {
      const record = decodeRecord(kv.key, kv.value);
      this.known.set(id, { record, revision: Number(kv.modRevision) });
      return { id, record };
    } catch (error) {
      this.log.error({ err: error, key: text(kv.key) }, "an invalid agent record in etcd was skipped; fix or delete that key");
      return undefined;
    }
  }

  /** After a compaction: everything read again, fed as one commit of the differences. */
  private async resync(): Promise<void> {
    try {
      const before = new Map(this.known);
      const { agents, revision } = await this.readAll();
      const changes: CommittedChange[] = [];
      for (const entry of agents) if (before.get(entry.record.id)?.revision !== entry.revision) changes.push({ id: entry.record.id, record: entry.record });
      for (const id of before.keys()) if (!this.known.has(id)) changes.push({ id, record: undefined });
      if (revision > this.delivered) {
        this.delivered = revision;
        if (changes.length > 0) for (const subscriber of this.subscribers) subscriber({ revision, changes });
        this.wake();
      }
    } catch (error) {
      this.log.warn({ err: error }, "could not read etcd again after a compaction; trying again");
    }
  }

  /** Resolves once the watch has fed `revision` (or after WATCH_CATCH_UP_MS, with a StoreError). */
  private caughtUp(revision: number): Promise<void> {
    if (this.delivered >= revision || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== entry);
        reject(
          new StoreError(`${this.location} made the change (revision ${revision}) but its watch has not delivered it within ${WATCH_CATCH_UP_MS / 1000} s; retry`, {
            problem: "etcd's watch is behind",
          }),
        );
      }, WATCH_CATCH_UP_MS);
      const entry: Waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(entry);
    });
  }

  private wake(): void {
    const ready = this.waiters.filter((waiter) => waiter.revision <= this.delivered);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => waiter.revision > this.delivered);
    for (const waiter of ready) waiter.resolve();
  }

  private conflictOf(changes: readonly StoreChange[], found: ReadonlyArray<KeyValue | undefined>): StoreConflict {
    let index = 0;
    for (const change of changes) {
      if (change.expectedRevision === undefined) continue;
      const actual = Number(found[index++]?.modRevision ?? 0n);
      if (actual !== change.expectedRevision) return new StoreConflict("put" in change ? change.put.id : change.delete, change.expectedRevision, actual);
    }
    const first = changes[0];
    const id = first === undefined ? ("" as AgentId) : "put" in first ? first.put.id : first.delete;
    return new StoreConflict(id, first?.expectedRevision ?? ABSENT, ABSENT);
  }

  /** Beat times of known agents, as conditional puts in batches; a batch that lost to a change waits for the next round. */
  private async writeBeats(): Promise<void> {
    const due = [...this.pendingBeats];
    this.pendingBeats.clear();
    for (let start = 0; start < due.length && !this.closed; start += BEAT_BATCH) {
      const batch: Array<[AgentId, number]> = [];
      const compare: MessageInitShape<typeof CompareSchema>[] = [];
      const success: MessageInitShape<typeof RequestOpSchema>[] = [];
      for (const [id, at] of due.slice(start, start + BEAT_BATCH)) {
        const entry = this.known.get(id);
        if (entry === undefined || entry.record.lastHeartbeat >= at) continue;
        batch.push([id, at]);
        const key = this.keys.agent(id);
        compare.push(modRevisionIs(key, entry.revision));
        success.push({ request: { case: "requestPut", value: { key, value: encodeRecord({ ...entry.record, lastHeartbeat: at }) } } });
      }
      if (batch.length === 0) continue;
      const started = performance.now();
      try {
        const response = await this.client.txn({ compare, success });
        this.options.observer?.written({ ok: true, durationMs: performance.now() - started, bytes: 0 });
        if (!response.succeeded) for (const [id, at] of batch) if (!this.pendingBeats.has(id)) this.pendingBeats.set(id, at);
      } catch (error) {
        this.failed(error, started);
        for (const [id, at] of batch) if (!this.pendingBeats.has(id)) this.pendingBeats.set(id, at);
      }
    }
    this.beatsWriting = undefined;
    if (this.pendingBeats.size > 0 && !this.closed) this.saveBeats(new Map());
  }

  private failed(error: unknown, started: number): Error {
    const storeError = error instanceof EtcdUnreachable ? this.unreachable(error) : (error as Error);
    this.peers.trouble();
    this.options.observer?.written({ ok: false, durationMs: performance.now() - started, bytes: 0, error: storeError });
    return storeError;
  }

  private unreachable(error: EtcdUnreachable): StoreError {
    return new StoreError(`${error.message} (store ${this.location})`, {
      cause: error,
      problem: "etcd did not answer; the write was not made, retry once etcd is back",
    });
  }
}

function modRevisionIs(key: Uint8Array, revision: number): MessageInitShape<typeof CompareSchema> {
  return {
    key,
    result: Compare_CompareResult.EQUAL,
    target: Compare_CompareTarget.MOD,
    targetUnion: { case: "modRevision", value: BigInt(revision) },
  };
}

function bytes(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}
