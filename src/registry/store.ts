// The Store port: how the registry persists agent records, shaped so that one process's file and a store
// shared by several replicas look the same to the domain. A commit is a set of conditional changes ("put R if
// its revision is still N") that is applied whole or not at all and gets the next revision; watch() feeds
// the committed changes, in order, to whoever keeps a table of them. Implementations live in src/store/.

import type { AgentId } from "./agent-id.js";
import { type AgentRecord, sameLabels } from "./agent.js";
import { sameInventory } from "./inventory.js";

/** Revision 0 is "no such record": expecting it means "only if the record does not exist yet". */
export const ABSENT = 0;

export type StoreChange =
  | { readonly put: AgentRecord; readonly expectedRevision?: number | undefined }
  | { readonly delete: AgentId; readonly expectedRevision?: number | undefined };

/** A record as the store holds it: with the revision of the commit that last changed it. */
export interface StoredAgent {
  readonly record: AgentRecord;
  readonly revision: number;
}

/** Everything the store holds, and the store revision it is at. */
export interface StoreSnapshot {
  readonly agents: readonly StoredAgent[];
  readonly revision: number;
}

/** One change of a commit, as applied: `record` is undefined for a delete. */
export interface CommittedChange {
  readonly id: AgentId;
  readonly record: AgentRecord | undefined;
}

/** A commit as the store made it: every change in it carries the commit's revision. */
export interface Commit {
  readonly revision: number;
  readonly changes: readonly CommittedChange[];
}

export interface Store {
  /** A name for messages: a file path, or a store's address. */
  readonly location: string;
  /**
   * Every record and the revision they are at. Rejects with a StoreError naming the location and the
   * problem when the data cannot be read or is invalid; the data is then left untouched.
   */
  load(): Promise<StoreSnapshot>;
  /**
   * Makes `changes` durable together, or none of them: resolves with the commit once it is durable and
   * has been fed to every watcher. Rejects with a StoreConflict when an expected revision does not hold,
   * and with a StoreError when the store cannot write (nothing of the commit is then kept).
   */
  commit(changes: readonly StoreChange[]): Promise<Commit>;
  /**
   * Heartbeat times of known agents, to be kept lazily: neither acknowledged nor given a revision, written
   * at the store's own bounded pace, and kept for later when a write fails.
   */
  saveBeats(beats: ReadonlyMap<AgentId, number>): void;
  /**
   * Calls `onCommit` with every commit after `fromRevision`, in order: first those it still holds, then each
   * new one before its commit() resolves. A single-process store feeds only its own commits. Returns the
   * unsubscribe function. Throws a StoreError if commits after `fromRevision` are no longer held.
   */
  watch(fromRevision: number, onCommit: (commit: Commit) => void): () => void;
  /** Finishes pending writes (beat times included) and releases the store. */
  close(): Promise<void>;
}

/** Told about every write a store makes (metrics, health). */
export interface StoreObserver {
  written(outcome: { readonly ok: boolean; readonly durationMs: number; readonly bytes: number; readonly error?: Error }): void;
}

/** The store cannot read or write its data; the message names the location and what to do. */
export class StoreError extends Error {
  /**
   * What went wrong without naming a file or directory ("the disk is full (ENOSPC)"): what callers not
   * trusted with the server's paths are told. The message names the file.
   */
  readonly problem: string;

  constructor(message: string, options?: { cause?: unknown; problem?: string }) {
    super(message, options);
    this.name = "StoreError";
    this.problem = options?.problem ?? "the store failed";
  }
}

/** An expected revision did not hold: another writer changed the record first. Nothing was written. */
export class StoreConflict extends Error {
  constructor(
    readonly id: AgentId,
    readonly expectedRevision: number,
    /** The record's revision now (ABSENT if there is none). */
    readonly actualRevision: number,
  ) {
    super(
      `agent ${id} changed while this change was being made (expected revision ${expectedRevision}, found ${actualRevision === ABSENT ? "none" : actualRevision})`,
    );
    this.name = "StoreConflict";
  }
}

/** Whether two versions of a record differ in what a store persists (all but the live stream, held and reachability facts). */
export function persistedFieldsEqual(a: AgentRecord, b: AgentRecord): boolean {
  return (
    a.id === b.id &&
    a.hostname === b.hostname &&
    a.ipAddress === b.ipAddress &&
    a.port === b.port &&
    a.ollamaVersion === b.ollamaVersion &&
    a.status === b.status &&
    a.lastHeartbeat === b.lastHeartbeat &&
    a.registeredAt === b.registeredAt &&
    a.draining === b.draining &&
    a.secretHash === b.secretHash &&
    a.inventoryUpdatedAt === b.inventoryUpdatedAt &&
    sameLabels(a.labels, b.labels) &&
    sameInventory(a.inventory, b.inventory)
  );
}
