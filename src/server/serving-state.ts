// Whether the server should get traffic: SERVING unless it is shutting down or its store cannot write.
// Feeds grpc.health.v1.Health (health-service.ts) on the gRPC port and /readyz on the HTTP port.

import { StoreError, type StoreObserver } from "../registry/store.js";

export type ServingStatus = "SERVING" | "NOT_SERVING";

export class ServingState implements StoreObserver {
  private storeError: string | undefined;
  /** The store's problem without its file's path, for those not trusted with it (disclosure.ts). */
  private storeProblem: string | undefined;
  private stopping = false;
  private readonly listeners = new Set<() => void>();

  get status(): ServingStatus {
    return this.notReadyReason === undefined ? "SERVING" : "NOT_SERVING";
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  /** Why the server is not ready, or undefined when it is; `detailed` adds what the store said, file path and all. */
  notReady(detailed: boolean): string | undefined {
    if (this.stopping) return "shutting down";
    if (this.storeError === undefined) return undefined;
    return detailed ? `the store cannot write: ${this.storeError}` : (this.storeProblem ?? "the store cannot write");
  }

  /** Why the server is not ready, in full (for the log and tests), or undefined when it is. */
  get notReadyReason(): string | undefined {
    return this.notReady(true);
  }

  /**
   * Calls `listener` after the state may have changed (a write failed or succeeded, shutdown began); it
   * reads `status` itself. Returns the unsubscribe function.
   */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  written(outcome: { ok: boolean; error?: Error }): void {
    const storeError = outcome.ok ? undefined : (outcome.error?.message ?? "write failed");
    if (storeError === this.storeError) return;
    this.storeError = storeError;
    this.storeProblem = outcome.error instanceof StoreError ? outcome.error.problem : undefined;
    this.publish();
  }

  shutdown(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.publish();
  }

  private publish(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
