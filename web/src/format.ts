// How the page writes times, sizes and an agent's labels, GPUs and models: short, for a table cell.

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Agent } from "../../gen/registry/v1/registry_pb.js";

export function millisOf(timestamp: Timestamp | undefined): number | undefined {
  if (timestamp === undefined) return undefined;
  return Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6);
}

/** "4s ago", "3m 20s ago", "2h 5m ago", "6d ago"; "never" without a beat. */
export function ageText(sinceMs: number | undefined, nowMs: number): string {
  if (sinceMs === undefined || sinceMs <= 0) return "never";
  const seconds = Math.max(0, Math.floor((nowMs - sinceMs) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m ago`;
  return `${Math.floor(hours / 24)}d ago`;
}

export function addressText(agent: Agent): string {
  return agent.ipAddress.includes(":") ? `[${agent.ipAddress}]:${agent.port}` : `${agent.ipAddress}:${agent.port}`;
}

export function labelPairs(agent: Agent): string[] {
  return Object.keys(agent.labels)
    .sort()
    .map((key) => `${key}=${agent.labels[key] ?? ""}`);
}

const GIB = 1024 ** 3;

function gib(bytes: bigint | undefined): string {
  return bytes === undefined ? "?" : (Number(bytes) / GIB).toFixed(Number(bytes) >= 100 * GIB ? 0 : 1);
}

/**
 * One line per kind of GPU: "2× NVIDIA A100-SXM4-80GB 31.0/160 GiB" (memory used / total, summed over the
 * GPUs of that name); "—" without any.
 */
export function gpuLines(agent: Agent): string[] {
  const byName = new Map<string, { count: number; used: bigint | undefined; total: bigint | undefined }>();
  for (const gpu of agent.gpus) {
    const kind = byName.get(gpu.name) ?? { count: 0, used: 0n, total: 0n };
    kind.count++;
    kind.used = kind.used === undefined || gpu.memoryUsedBytes === undefined ? undefined : kind.used + gpu.memoryUsedBytes;
    kind.total = kind.total === undefined || gpu.memoryTotalBytes === undefined ? undefined : kind.total + gpu.memoryTotalBytes;
    byName.set(gpu.name, kind);
  }
  return [...byName].map(([name, kind]) => `${kind.count > 1 ? `${kind.count}× ` : ""}${name} ${gib(kind.used)}/${gib(kind.total)} GiB`);
}

/** Every GPU in full, for the cell's tooltip. */
export function gpuDetails(agent: Agent): string {
  return agent.gpus
    .map((gpu) => {
      const extra = [
        gpu.utilizationPercent === undefined ? undefined : `${gpu.utilizationPercent}% busy`,
        gpu.temperatureCelsius === undefined ? undefined : `${gpu.temperatureCelsius} °C`,
      ].filter((part) => part !== undefined);
      return `GPU ${gpu.index} ${gpu.name}: ${gib(gpu.memoryUsedBytes)}/${gib(gpu.memoryTotalBytes)} GiB${extra.length > 0 ? `, ${extra.join(", ")}` : ""}`;
    })
    .join("\n");
}

/** The loaded models, "llama3.1:8b (4.9 GiB)" with the GPU memory each holds. */
export function loadedModels(agent: Agent): string[] {
  return agent.models.filter((model) => model.loaded).map((model) => (model.vramBytes > 0n ? `${model.name} (${gib(model.vramBytes)} GiB)` : model.name));
}
