// What the node's daemon reports as its inventory: its GPUs (nvidia-smi) and its Ollama models, kept within
// the registry's limits so a report is never refused. Each problem (no nvidia-smi, Ollama not answering, a
// line nvidia-smi printed that cannot be read) is logged once when it appears, not at every collection.

import type { Log } from "../common/log.js";
import { type Gpu, type Inventory, MAX_GPUS, MAX_MODELS, type Model, parseInventory } from "../registry/inventory.js";
import { type GpuReading, type NvidiaSmiOptions, readGpus } from "./nvidia-smi.js";
import { type ModelReading, readModels } from "./ollama-models.js";

export interface InventoryCollectorOptions {
  readonly ollamaUrl: string;
  readonly log: Log;
  readonly nvidiaSmi?: NvidiaSmiOptions;
  readonly readGpus?: () => Promise<GpuReading>;
  readonly readModels?: (signal?: AbortSignal) => Promise<ModelReading>;
}

export class InventoryCollector {
  /** Problems logged and not yet cleared, so each is logged once. */
  private readonly logged = new Set<string>();
  private lastModels: readonly Model[] = [];

  constructor(private readonly options: InventoryCollectorOptions) {}

  /** One collection. Models Ollama cannot list now are reported as they last were (the node drains meanwhile). */
  async collect(signal?: AbortSignal): Promise<Inventory> {
    const [gpuReading, modelReading] = await Promise.all([
      (this.options.readGpus ?? (() => readGpus(this.options.nvidiaSmi)))(),
      (this.options.readModels ?? ((s?: AbortSignal) => readModels(this.options.ollamaUrl, { signal: s })))(signal),
    ]);
    this.problem("gpus", gpuReading.problem, "no GPUs reported");
    for (const line of gpuReading.skipped) this.problem(`line ${line}`, `nvidia-smi printed a line that cannot be read, skipped: ${line}`, "");
    this.problem("models", modelReading.problem, "models not refreshed");
    if (modelReading.problem === undefined) this.lastModels = modelReading.models;
    return {
      gpus: this.within(gpuReading.gpus, MAX_GPUS, "GPUs", (gpu) => ({ gpus: [gpu], models: [] })),
      models: this.within(this.lastModels, MAX_MODELS, "models", (model) => ({ gpus: [], models: [model] })),
    };
  }

  /** The items the registry would take: at most `max`, each within its rules; the rest left out with a warning. */
  private within<T extends Gpu | Model>(items: readonly T[], max: number, what: string, alone: (item: T) => Inventory): T[] {
    const kept = items.filter((item) => {
      try {
        parseInventory(alone(item));
        return true;
      } catch (error) {
        this.problem(`invalid ${what} ${item.name}`, `left out of the inventory: ${(error as Error).message}`, "");
        return false;
      }
    });
    if (kept.length > max) this.problem(`too many ${what}`, `${kept.length} ${what}: reporting the first ${max}, the registry's limit`, "");
    return kept.slice(0, max);
  }

  private problem(key: string, problem: string | undefined, consequence: string): void {
    if (problem === undefined) {
      if (this.logged.delete(key)) this.options.log.info({ inventory: key }, `inventory: ${key} readable again`);
      return;
    }
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.options.log.warn({ inventory: key }, consequence === "" ? problem : `${problem}; ${consequence}`);
  }
}
