// An agent's inventory as the stores keep it: one JSON object (snake_case keys as on the wire, times as
// RFC 3339), the "inventory" key of an agents.json entry and the inventory column of registry.db. Decoding
// checks the shape and the domain's limits and says what is wrong; the caller names the agent.

import type { Gpu, Inventory, Model } from "../registry/inventory.js";
import { parseInventory } from "../registry/inventory.js";
import { RegistryError } from "../registry/registry-error.js";

/** An inventory with the time the registry took it. */
export interface StoredInventory {
  readonly inventory: Inventory;
  readonly updatedAt: number;
}

export function encodeInventory({ inventory, updatedAt }: StoredInventory): Record<string, unknown> {
  return {
    updated_at: new Date(updatedAt).toISOString(),
    gpus: inventory.gpus.map((gpu) => ({
      index: gpu.index,
      uuid: gpu.uuid,
      name: gpu.name,
      memory_total_bytes: gpu.memoryTotalBytes,
      memory_used_bytes: gpu.memoryUsedBytes,
      utilization_percent: gpu.utilizationPercent,
      temperature_celsius: gpu.temperatureCelsius,
    })),
    models: inventory.models.map((model) => ({
      name: model.name,
      digest: model.digest,
      size_bytes: model.sizeBytes,
      loaded: model.loaded,
      vram_bytes: model.vramBytes,
      expires_at: model.expiresAt === undefined ? undefined : new Date(model.expiresAt).toISOString(),
    })),
  };
}

/** Reads what encodeInventory wrote; throws an Error saying which field is wrong ("inventory.gpus[2].name ..."). */
export function decodeInventory(value: unknown): StoredInventory {
  const fields = object(value, "inventory");
  const updatedAt = time(fields["updated_at"], "inventory.updated_at");
  if (updatedAt === undefined) throw new Error(`"inventory.updated_at" is missing`);
  const gpus = array(fields["gpus"], "inventory.gpus").map((row, i): Gpu => {
    const at = `inventory.gpus[${i}]`;
    const gpu = object(row, at);
    return {
      index: number(gpu["index"], `${at}.index`) ?? 0,
      uuid: string(gpu["uuid"], `${at}.uuid`),
      name: string(gpu["name"], `${at}.name`),
      memoryTotalBytes: number(gpu["memory_total_bytes"], `${at}.memory_total_bytes`),
      memoryUsedBytes: number(gpu["memory_used_bytes"], `${at}.memory_used_bytes`),
      utilizationPercent: number(gpu["utilization_percent"], `${at}.utilization_percent`),
      temperatureCelsius: number(gpu["temperature_celsius"], `${at}.temperature_celsius`),
    };
  });
  const models = array(fields["models"], "inventory.models").map((row, i): Model => {
    const at = `inventory.models[${i}]`;
    const model = object(row, at);
    return {
      name: string(model["name"], `${at}.name`),
      digest: string(model["digest"], `${at}.digest`),
      sizeBytes: number(model["size_bytes"], `${at}.size_bytes`) ?? 0,
      loaded: model["loaded"] === true,
      vramBytes: number(model["vram_bytes"], `${at}.vram_bytes`) ?? 0,
      expiresAt: time(model["expires_at"], `${at}.expires_at`),
    };
  });
  try {
    return { inventory: parseInventory({ gpus, models }), updatedAt };
  } catch (error) {
    // The domain's refusal names the field; here it is a fault of the data, not of a request.
    if (error instanceof RegistryError) throw new Error(error.message);
    throw error;
  }
}

function object(value: unknown, at: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`"${at}" must be an object`);
  return value as Record<string, unknown>;
}

function array(value: unknown, at: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new Error(`"${at}" must be an array`);
  return value;
}

function string(value: unknown, at: string): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw new Error(`"${at}" must be a string`);
  return value;
}

function number(value: unknown, at: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number") throw new Error(`"${at}" must be a number`);
  return value;
}

function time(value: unknown, at: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = typeof value === "string" ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw new Error(`"${at}" must be an RFC 3339 time`);
  return ms;
}
