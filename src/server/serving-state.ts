// Whether the server should get traffic: SERVING unless it is shutting down or its store cannot write.
// Feeds grpc.health.v1.Health (health-service.ts) on the gRPC port and /readyz on the HTTP port.

import type { StoreObserver } from "../registry/store.js";

export type ServingStatus = "SERVING" | "NOT_SERVING";

export class ServingState implements StoreObserver {
  private storeError: string | undefined;
  private stopping = false;
  private readonly listeners = new Set<() => void>();

  get status(): ServingStatus {
    return this.notReadyReason === undefined ? "SERVING" : "NOT_SERVING";
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  /** Why the server is not ready, or undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.stopping) return "shutting down";
    if (this.storeError !== undefined) return `the store cannot write: ${this.storeError}`;
    return undefined;
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
