// A node's inventory on the wire (registry.v1 Gpu, Model, Inventory) <-> the domain's Inventory. Numbers
// arrive as uint64 (bigint) and are taken as numbers: the domain's limits (at most 2^50 bytes) refuse any
// figure too large for one, naming the field. Used by the server (requests in, agents out) and the daemon
// (its own inventory out).

import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Gpu as WireGpu,
  GpuSchema,
  type Inventory as WireInventory,
  InventorySchema,
  type Model as WireModel,
  ModelSchema,
} from "../../gen/registry/v1/registry_pb.js";
import type { Gpu, Inventory, Model } from "../registry/inventory.js";
import { parseInventory } from "../registry/inventory.js";

/** The checked inventory of a request; undefined when the request carries none. */
export function inventoryFromWire(inventory: WireInventory | undefined): Inventory | undefined {
  if (inventory === undefined) return undefined;
  return parseInventory({
    gpus: inventory.gpus.map(
      (gpu): Gpu => ({
        index: gpu.index,
        uuid: gpu.uuid,
        name: gpu.name,
        memoryTotalBytes: optionalNumber(gpu.memoryTotalBytes),
        memoryUsedBytes: optionalNumber(gpu.memoryUsedBytes),
        utilizationPercent: gpu.utilizationPercent,
        temperatureCelsius: gpu.temperatureCelsius,
      }),
    ),
    models: inventory.models.map(
      (model): Model => ({
        name: model.name,
        digest: model.digest,
        sizeBytes: Number(model.sizeBytes),
        loaded: model.loaded,
        vramBytes: Number(model.vramBytes),
        expiresAt: model.expiresAt === undefined ? undefined : timestampDate(model.expiresAt).getTime(),
      }),
    ),
  });
}

/** The inventory as the registry.v1 message, as the daemon sends it. */
export function inventoryToWire(inventory: Inventory): WireInventory {
  return create(InventorySchema, { gpus: inventory.gpus.map(gpuToWire), models: inventory.models.map(modelToWire) });
}

export function gpuToWire(gpu: Gpu): WireGpu {
  return create(GpuSchema, {
    index: gpu.index,
    uuid: gpu.uuid,
    name: gpu.name,
    memoryTotalBytes: optionalBigint(gpu.memoryTotalBytes),
    memoryUsedBytes: optionalBigint(gpu.memoryUsedBytes),
    utilizationPercent: gpu.utilizationPercent,
    temperatureCelsius: gpu.temperatureCelsius,
  });
}

export function modelToWire(model: Model): WireModel {
  return create(ModelSchema, {
    name: model.name,
    digest: model.digest,
    sizeBytes: BigInt(model.sizeBytes),
    loaded: model.loaded,
    vramBytes: BigInt(model.vramBytes),
    expiresAt: model.expiresAt === undefined ? undefined : timestampFromMs(model.expiresAt),
  });
}

function optionalNumber(value: bigint | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

function optionalBigint(value: number | undefined): bigint | undefined {
  return value === undefined ? undefined : BigInt(value);
}
