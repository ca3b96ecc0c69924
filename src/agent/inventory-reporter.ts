// When the daemon tells the registry its inventory: with every Register, and in a beat only when it changed.
// A change of what a user routes by (GPUs, models, what is loaded) is told at once; one of the fast-moving
// figures alone (memory used, utilisation, temperature) at most once per inventory interval, so a busy GPU
// does not turn every beat into a write.

import type { Clock } from "../common/clock.js";
import { type Inventory, sameInventory, sameRouting } from "../registry/inventory.js";

export const DEFAULT_INVENTORY_INTERVAL_MS = 60_000;

export class InventoryReporter {
  private current: Inventory | undefined;
  private reportedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number = DEFAULT_INVENTORY_INTERVAL_MS,
  ) {}

  /** The inventory to report: a new object only when it is to be sent again (compare by identity). */
  get reported(): Inventory | undefined {
    return this.current;
  }

  /** Takes a fresh collection; returns whether the inventory to report changed. */
  offer(collected: Inventory): boolean {
    const now = this.clock.monotonic();
    const due =
      this.current === undefined ||
      !sameRouting(this.current, collected) ||
      (!sameInventory(this.current, collected) && now - this.reportedAt >= this.intervalMs);
    if (!due) return false;
    this.current = collected;
    this.reportedAt = now;
    return true;
  }
}
