// The Store port: how the registry persists agent records. Implementations live in src/store/ (a JSON
// file first); the registry never touches files itself.

import type { AgentId } from "./agent-id.js";
import type { AgentRecord } from "./agent.js";

export type StoreChange = { readonly put: AgentRecord } | { readonly delete: AgentId };

export interface Store {
  /** A name for messages, e.g. the file path. */
  readonly location: string;
  /**
   * Every persisted agent. Rejects with a StoreError naming the location and the problem when the data
   * cannot be read or is invalid; the data is then left untouched.
   */
  load(): Promise<AgentRecord[]>;
  /**
   * Makes `changes` durable; resolves only once they are. Concurrent calls may share one write. On
   * failure it rejects with a StoreError, and the changes are retried with the next commit.
   */
  commit(changes: readonly StoreChange[]): Promise<void>;
  /** Finishes pending writes and releases the store. */
  close(): Promise<void>;
}

/** Told about every write a store makes (metrics, health). */
export interface StoreObserver {
  written(outcome: { readonly ok: boolean; readonly durationMs: number; readonly bytes: number; readonly error?: Error }): void;
}

/** The store cannot read or write its data; the message names the location and what to do. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
  }
}
