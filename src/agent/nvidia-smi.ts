// The node's GPUs from nvidia-smi (found on PATH): the design's exact query, CSV without header or units,
// memory in MiB turned into bytes, a figure the board reports as [N/A] (or "Not Supported") left absent. No
// nvidia-smi, one that fails or one that hangs past the timeout: no GPUs and the reason, never an exception.
// A line that cannot be read is skipped and named.

import { spawn } from "node:child_process";
import type { Gpu } from "../registry/inventory.js";

export const NVIDIA_SMI_ARGS = [
  "--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu,temperature.gpu",
  "--format=csv,noheader,nounits",
] as const;

export const DEFAULT_NVIDIA_SMI_TIMEOUT_MS = 5000;

export interface GpuReading {
  readonly gpus: readonly Gpu[];
  /** Why there are no GPUs to report: no nvidia-smi, or one that failed. Undefined when it answered. */
  readonly problem?: string | undefined;
  /** Lines that could not be read, each with why. */
  readonly skipped: readonly string[];
}

export interface NvidiaSmiOptions {
  /** Default "nvidia-smi", looked up on PATH. */
  readonly command?: string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

const MIB = 2 ** 20;

export async function readGpus(options: NvidiaSmiOptions = {}): Promise<GpuReading> {
  const command = options.command ?? "nvidia-smi";
  const timeoutMs = options.timeoutMs ?? DEFAULT_NVIDIA_SMI_TIMEOUT_MS;
  const run = await runCommand(command, timeoutMs, options.env ?? process.env);
  if ("problem" in run) return { gpus: [], problem: run.problem, skipped: [] };
  const gpus: Gpu[] = [];
  const skipped: string[] = [];
  for (const line of run.stdout.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    const gpu = parseGpuLine(line);
    if (typeof gpu === "string") skipped.push(`${JSON.stringify(line.slice(0, 200))}: ${gpu}`);
    else gpus.push(gpu);
  }
  return { gpus, skipped };
}

/** One line of the query's output as a GPU, or why it is not one. */
export function parseGpuLine(line: string): Gpu | string {
  const fields = line.split(",").map((field) => field.trim());
  if (fields.length !== 7) return `expected 7 comma-separated fields, found ${fields.length}`;
  const [index, uuid, name, total, used, utilization, temperature] = fields as [string, string, string, string, string, string, string];
  if (!/^\d+$/.test(index)) return `index ${JSON.stringify(index)} is not a whole number`;
  if (uuid === "" || name === "") return "the uuid and name fields must not be empty";
  const figures: Array<[string, string]> = [
    ["memory.total", total],
    ["memory.used", used],
    ["utilization.gpu", utilization],
    ["temperature.gpu", temperature],
  ];
  for (const [what, value] of figures) {
    if (!notAvailable(value) && !/^-?\d+(\.\d+)?$/.test(value)) return `${what} ${JSON.stringify(value)} is not a number`;
  }
  return {
    index: Number(index),
    uuid,
    name,
    memoryTotalBytes: figure(total, MIB),
    memoryUsedBytes: figure(used, MIB),
    utilizationPercent: figure(utilization, 1),
    temperatureCelsius: figure(temperature, 1),
  };
}

function notAvailable(value: string): boolean {
  return /^\[.*\]$/.test(value) || value === "N/A" || value === "Not Supported";
}

function figure(value: string, unit: number): number | undefined {
  return notAvailable(value) ? undefined : Math.round(Number(value) * unit);
}

function runCommand(command: string, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<{ stdout: string } | { problem: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, NVIDIA_SMI_ARGS, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk.slice(0, 500)));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ problem: `${command} gave no answer within ${timeoutMs} ms (killed)` });
    }, timeoutMs);
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({
        problem: error.code === "ENOENT" ? `${command} is not on PATH (no NVIDIA driver?): reporting no GPUs` : `cannot run ${command}: ${error.message}`,
      });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout });
      else {
        const how = code === null ? `was killed by ${signal ?? "a signal"}` : `exited with status ${code}`;
        resolve({ problem: `${command} ${how}${stderr.trim() === "" ? "" : `: ${stderr.trim().slice(0, 200)}`}` });
      }
    });
  });
}
