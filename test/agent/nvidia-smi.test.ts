// The node's GPUs from nvidia-smi: a fake nvidia-smi script on PATH prints what a real one prints for the
// design's query (several GPUs, MiB without units, [N/A] on a board that does not report a figure).

import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { NVIDIA_SMI_ARGS, readGpus } from "../../src/agent/nvidia-smi.js";
import { type FakeNvidiaSmi, fakeNvidiaSmi } from "../support/fake-nvidia-smi.js";

const fakes: FakeNvidiaSmi[] = [];

afterEach(async () => {
  for (const fake of fakes.splice(0)) await fake.remove();
});

async function fake(body?: string): Promise<FakeNvidiaSmi> {
  const made = await fakeNvidiaSmi(body);
  fakes.push(made);
  return made;
}

describe("reading GPUs from nvidia-smi", () => {
  it("asks the design's exact query and reads every GPU, MiB as bytes, [N/A] as absent", async () => {
    const { env, argsFile } = await fake();

    const reading = await readGpus({ env });

    await expect(readFile(argsFile, "utf8")).resolves.toBe(`${NVIDIA_SMI_ARGS.join(" ")}\n`);
    expect(reading.problem).toBeUndefined();
    expect(reading.gpus).toEqual([
      {
        index: 0,
        uuid: "GPU-5f0e8e5a-1c2b-4d7e-9a10-3b6c2d1e0f11",
        name: "NVIDIA A100-SXM4-80GB",
        memoryTotalBytes: 81920 * 2 ** 20,
        memoryUsedBytes: 31744 * 2 ** 20,
        utilizationPercent: 42,
        temperatureCelsius: 55,
      },
      expect.objectContaining({ index: 1, memoryUsedBytes: 4 * 2 ** 20, utilizationPercent: 0 }),
      {
        index: 2,
        uuid: "GPU-0b9c8d7e-6f5a-4b3c-2d1e-0f9a8b7c6d5e",
        name: "NVIDIA GH200 480GB",
        memoryTotalBytes: undefined,
        memoryUsedBytes: undefined,
        utilizationPercent: 0,
        temperatureCelsius: undefined,
      },
    ]);
  });

  it("skips a line it cannot read, naming it, and keeps the others", async () => {
    const { env } = await fake(`echo '0, GPU-a, Tesla T4, 15360, 0, 0, 40'\necho 'Failed to initialize NVML: Driver/library version mismatch'`);

    const reading = await readGpus({ env });

    expect(reading.gpus.map((gpu) => gpu.name)).toEqual(["Tesla T4"]);
    expect(reading.skipped).toEqual([expect.stringContaining('"Failed to initialize NVML: Driver/library version mismatch"')]);
  });

  it("reports no GPUs and why when nvidia-smi is not on PATH", async () => {
    const reading = await readGpus({ command: "nvidia-smi-that-is-not-there" });

    expect(reading).toEqual({ gpus: [], problem: expect.stringMatching(/not on PATH/) as string, skipped: [] });
  });

  it("reports no GPUs and nvidia-smi's own words when it fails", async () => {
    const { env } = await fake(`echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\nexit 9`);

    const reading = await readGpus({ env });

    expect(reading.gpus).toEqual([]);
    expect(reading.problem).toBe("nvidia-smi exited with status 9: NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.");
  });

  it("gives up on an nvidia-smi that hangs, after its timeout", async () => {
    const { env } = await fake("exec sleep 30");

    const reading = await readGpus({ env, timeoutMs: 200 });

    expect(reading).toMatchObject({ gpus: [], problem: "nvidia-smi gave no answer within 200 ms (killed)" });
  });
});
