// How a node's inventory looks in a terminal: the short GPUS and MODELS cells of `list` ("2×A100 31/160G",
// "llama3.1:8b*,qwen2.5:72b" with * for loaded) and the full lines of `get`. Pure functions of wire messages.

import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Agent, Gpu, Model } from "../../gen/registry/v1/registry_pb.js";
import { formatTime } from "./agent-table.js";

const GIB = 2 ** 30;
/** Models a `list` cell names before it says "+N". */
const MODELS_SHOWN = 3;

/** "2×A100 31/160G": GPUs by kind (count × short name), then memory used / total in GiB where reported. */
export function formatGpus(gpus: readonly Gpu[]): string {
  if (gpus.length === 0) return "";
  const kinds = new Map<string, number>();
  for (const gpu of gpus) kinds.set(shortName(gpu.name), (kinds.get(shortName(gpu.name)) ?? 0) + 1);
  const names = [...kinds].map(([name, count]) => (count === 1 ? name : `${count}×${name}`)).join(",");
  const withTotal = gpus.filter((gpu) => gpu.memoryTotalBytes !== undefined);
  if (withTotal.length === 0) return names;
  const total = withTotal.reduce((sum, gpu) => sum + Number(gpu.memoryTotalBytes ?? 0n), 0);
  const used = withTotal.reduce((sum, gpu) => sum + Number(gpu.memoryUsedBytes ?? 0n), 0);
  return `${names} ${Math.round(used / GIB)}/${Math.round(total / GIB)}G`;
}

/** "llama3.1:8b*,qwen2.5:72b": loaded ones first, marked *, at most three named, then "+N". */
export function formatModels(models: readonly Model[]): string {
  const sorted = [...models].sort((a, b) => Number(b.loaded) - Number(a.loaded));
  const shown = sorted.slice(0, MODELS_SHOWN).map((model) => `${model.name}${model.loaded ? "*" : ""}`);
  const more = sorted.length - shown.length;
  return [...shown, ...(more > 0 ? [`+${more}`] : [])].join(",");
}

/** The lines of `get` for the inventory and reachability, as [name, value] pairs. */
export function inventoryFields(agent: Agent): Array<[string, string]> {
  const fields: Array<[string, string]> = [
    ["Reachable:", agent.reachable === false ? `no: ${agent.statusMessage}` : "yes"],
    ["Inventory:", agent.inventoryUpdatedAt === undefined ? "never" : formatTime(timestampMs(agent.inventoryUpdatedAt))],
  ];
  if (agent.gpus.length === 0) fields.push(["GPUs:", "none reported"]);
  agent.gpus.forEach((gpu, i) => fields.push([i === 0 ? "GPUs:" : "", gpuLine(gpu)]));
  if (agent.models.length === 0) fields.push(["Models:", "none reported"]);
  agent.models.forEach((model, i) => fields.push([i === 0 ? "Models:" : "", modelLine(model)]));
  return fields;
}

function gpuLine(gpu: Gpu): string {
  const memory =
    gpu.memoryTotalBytes === undefined ? "memory n/a" : `${mib(gpu.memoryUsedBytes)}/${mib(gpu.memoryTotalBytes)} MiB`;
  const utilization = gpu.utilizationPercent === undefined ? "util n/a" : `${gpu.utilizationPercent}% util`;
  const temperature = gpu.temperatureCelsius === undefined ? "temp n/a" : `${gpu.temperatureCelsius} °C`;
  return `${gpu.index}: ${gpu.name} (${gpu.uuid}), ${memory}, ${utilization}, ${temperature}`;
}

function modelLine(model: Model): string {
  const size = `${(Number(model.sizeBytes) / GIB).toFixed(1)} GiB`;
  if (!model.loaded) return `${model.name} ${size}`;
  const until = model.expiresAt === undefined ? "" : `, until ${formatTime(timestampMs(model.expiresAt))}`;
  return `${model.name} ${size}, loaded (${(Number(model.vramBytes) / GIB).toFixed(1)} GiB VRAM${until})`;
}

function mib(bytes: bigint | undefined): string {
  return bytes === undefined ? "?" : String(Math.round(Number(bytes) / 2 ** 20));
}

/** "NVIDIA A100-SXM4-80GB" -> "A100", "NVIDIA GH200 480GB" -> "GH200", "Tesla T4" -> "T4". */
function shortName(name: string): string {
  const bare = name.replace(/^(NVIDIA|Tesla|GeForce|Quadro)\s+/i, "").replace(/^(NVIDIA|Tesla|GeForce)\s+/i, "");
  return bare.split(/[\s-]/)[0] || name;
}
