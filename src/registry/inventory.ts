// A node's inventory (its GPUs and Ollama models) as plain data: the limits a reported inventory must keep
// (refused with invalidArgument naming the field and its index), and which changes count. What a load
// balancer routes by (the GPU set and totals, the model set, what is loaded) is a visible change; the
// fast-moving figures (memory used, utilisation, temperature) are not. Pure; knows nothing of the wire.

import { invalidArgument } from "./registry-error.js";

export const MAX_GPUS = 64;
export const MAX_MODELS = 1024;
export const MAX_NAME_BYTES = 256;
/** 1 PiB: no GPU or model is this big; a larger figure is a unit mistake or garbage. */
export const MAX_BYTES = 2 ** 50;
export const MIN_TEMPERATURE = -50;
export const MAX_TEMPERATURE = 150;

export interface Gpu {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  /** Absent: the board reports [N/A]. */
  readonly memoryTotalBytes?: number | undefined;
  readonly memoryUsedBytes?: number | undefined;
  readonly utilizationPercent?: number | undefined;
  readonly temperatureCelsius?: number | undefined;
}

export interface Model {
  /** With its tag, e.g. "llama3.1:8b". */
  readonly name: string;
  readonly digest: string;
  readonly sizeBytes: number;
  readonly loaded: boolean;
  /** 0 when not loaded (or loaded on CPU only). */
  readonly vramBytes: number;
  /** Milliseconds since the Unix epoch; absent when not loaded. */
  readonly expiresAt?: number | undefined;
}

export interface Inventory {
  readonly gpus: readonly Gpu[];
  readonly models: readonly Model[];
}

export const EMPTY_INVENTORY: Inventory = { gpus: [], models: [] };

/** A reported inventory, checked: returns it, or throws invalidArgument naming the first field at fault. */
export function parseInventory(inventory: Inventory, field = "inventory"): Inventory {
  if (inventory.gpus.length > MAX_GPUS) {
    throw invalidArgument(`${field}.gpus`, `at most ${MAX_GPUS} GPUs per node, got ${inventory.gpus.length}`);
  }
  if (inventory.models.length > MAX_MODELS) {
    throw invalidArgument(`${field}.models`, `at most ${MAX_MODELS} models per node, got ${inventory.models.length}`);
  }
  inventory.gpus.forEach((gpu, i) => checkGpu(gpu, `${field}.gpus[${i}]`));
  inventory.models.forEach((model, i) => checkModel(model, `${field}.models[${i}]`));
  return inventory;
}

function checkGpu(gpu: Gpu, at: string): void {
  integerIn(gpu.index, `${at}.index`, 0, 1023);
  text(gpu.uuid, `${at}.uuid`);
  text(gpu.name, `${at}.name`);
  if (gpu.memoryTotalBytes !== undefined) integerIn(gpu.memoryTotalBytes, `${at}.memory_total_bytes`, 0, MAX_BYTES);
  if (gpu.memoryUsedBytes !== undefined) integerIn(gpu.memoryUsedBytes, `${at}.memory_used_bytes`, 0, MAX_BYTES);
  if (gpu.utilizationPercent !== undefined) integerIn(gpu.utilizationPercent, `${at}.utilization_percent`, 0, 100);
  if (gpu.temperatureCelsius !== undefined) {
    integerIn(gpu.temperatureCelsius, `${at}.temperature_celsius`, MIN_TEMPERATURE, MAX_TEMPERATURE);
  }
}

function checkModel(model: Model, at: string): void {
  if (model.name === "") throw invalidArgument(`${at}.name`, "is required");
  text(model.name, `${at}.name`);
  text(model.digest, `${at}.digest`);
  integerIn(model.sizeBytes, `${at}.size_bytes`, 0, MAX_BYTES);
  integerIn(model.vramBytes, `${at}.vram_bytes`, 0, MAX_BYTES);
}

const PRINTABLE = /^[^\p{Cc}\p{Cs}\uFFFD]*$/u;

function text(value: string, at: string): void {
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_NAME_BYTES) throw invalidArgument(at, `must be at most ${MAX_NAME_BYTES} bytes, got ${bytes}`);
  if (!PRINTABLE.test(value)) {
    throw invalidArgument(at, `must be printable text${value.includes("\uFFFD") ? " (U+FFFD: the request held bytes that are not UTF-8)" : ""}`);
  }
}

function integerIn(value: number, at: string, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(at, `must be a whole number from ${min} to ${max}, got ${value}`);
  }
}

/**
 * Whether two inventories agree in what a user routes by: the GPUs (index, uuid, name, total memory) and
 * the models (name, digest, size, loaded, VRAM). Memory used, utilisation, temperature and expiry times
 * move all the time and are left out: a change of those alone is no visible change.
 */
export function sameRouting(a: Inventory | undefined, b: Inventory | undefined): boolean {
  if (a === b) return true;
  const x = a ?? EMPTY_INVENTORY;
  const y = b ?? EMPTY_INVENTORY;
  if (x.gpus.length !== y.gpus.length || x.models.length !== y.models.length) return false;
  for (let i = 0; i < x.gpus.length; i++) {
    const g = x.gpus[i] as Gpu;
    const h = y.gpus[i] as Gpu;
    if (g.index !== h.index || g.uuid !== h.uuid || g.name !== h.name || g.memoryTotalBytes !== h.memoryTotalBytes) return false;
  }
  for (let i = 0; i < x.models.length; i++) {
    const m = x.models[i] as Model;
    const n = y.models[i] as Model;
    if (m.name !== n.name || m.digest !== n.digest || m.sizeBytes !== n.sizeBytes || m.loaded !== n.loaded || m.vramBytes !== n.vramBytes) {
      return false;
    }
  }
  return true;
}

/** Whether two inventories are the same in every figure. */
export function sameInventory(a: Inventory | undefined, b: Inventory | undefined): boolean {
  if (!sameRouting(a, b)) return false;
  const x = a ?? EMPTY_INVENTORY;
  const y = b ?? EMPTY_INVENTORY;
  return (
    x.gpus.every((g, i) => {
      const h = y.gpus[i] as Gpu;
      return g.memoryUsedBytes === h.memoryUsedBytes && g.utilizationPercent === h.utilizationPercent && g.temperatureCelsius === h.temperatureCelsius;
    }) && x.models.every((m, i) => m.expiresAt === (y.models[i] as Model).expiresAt)
  );
}

export function hasModel(inventory: Inventory | undefined, name: string): boolean {
  return inventory?.models.some((model) => model.name === name) ?? false;
}

export function hasLoadedModel(inventory: Inventory | undefined, name: string): boolean {
  return inventory?.models.some((model) => model.name === name && model.loaded) ?? false;
}
