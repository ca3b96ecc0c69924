// Whether the server should get traffic: SERVING unless it is shutting down or its store cannot write.
// Feeds grpc.health.v1.Health (grpc-health-check) on the gRPC port and /readyz on the HTTP port.

import { HealthImplementation, type ServingStatus } from "grpc-health-check";
import type { StoreObserver } from "../registry/store.js";

/** The names Health answers for: "" (the whole server) and the registry service. */
const SERVICES = ["", "registry.v1.AgentRegistry"];

export class ServingState implements StoreObserver {
  readonly health: HealthImplementation;
  private storeError: string | undefined;
  private shuttingDown = false;

  constructor() {
    this.health = new HealthImplementation(Object.fromEntries(SERVICES.map((service) => [service, "SERVING"])));
  }

  /** Why the server is not ready, or undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.shuttingDown) return "shutting down";
    if (this.storeError !== undefined) return `the store cannot write: ${this.storeError}`;
    return undefined;
  }

  written(outcome: { ok: boolean; error?: Error }): void {
    this.storeError = outcome.ok ? undefined : (outcome.error?.message ?? "write failed");
    this.publish();
  }

  shutdown(): void {
    this.shuttingDown = true;
    this.publish();
  }

  private publish(): void {
    const status: ServingStatus = this.notReadyReason === undefined ? "SERVING" : "NOT_SERVING";
    for (const service of SERVICES) this.health.setStatus(service, status);
  }
}
