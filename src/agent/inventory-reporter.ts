// When the daemon tells the registry its inventory: with every Register, and in a beat only when it changed.
// A change of what a user routes by (GPUs, models, what is loaded) is told at once; one of the fast-moving
// figures alone (memory used, utilisation, temperature) at most once per inventory interval, so a busy GPU
// does not turn every beat into a write.

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Inventory as WireInventory, InventorySchema } from "../../gen/registry/v1/registry_pb.js";
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

/** The inventory as the registry.v1 message. */
export function inventoryToWire(inventory: Inventory): WireInventory {
  return create(InventorySchema, {
    gpus: inventory.gpus.map((gpu) => ({
      index: gpu.index,
      uuid: gpu.uuid,
      name: gpu.name,
      memoryTotalBytes: gpu.memoryTotalBytes === undefined ? undefined : BigInt(gpu.memoryTotalBytes),
      memoryUsedBytes: gpu.memoryUsedBytes === undefined ? undefined : BigInt(gpu.memoryUsedBytes),
      utilizationPercent: gpu.utilizationPercent,
      temperatureCelsius: gpu.temperatureCelsius,
    })),
    models: inventory.models.map((model) => ({
      name: model.name,
      digest: model.digest,
      sizeBytes: BigInt(model.sizeBytes),
      loaded: model.loaded,
      vramBytes: BigInt(model.vramBytes),
      expiresAt: model.expiresAt === undefined ? undefined : timestampFromMs(model.expiresAt),
    })),
  });
}
