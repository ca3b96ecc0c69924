// The node's GPUs from nvidia-smi: a fake nvidia-smi script on PATH prints what a real one prints for the
// design's query (several GPUs, MiB without units, [N/A] on a board that does not report a figure).

import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NVIDIA_SMI_ARGS, readGpus } from "../../src/agent/nvidia-smi.js";

// Copied from `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` on an A100 box, with a GH200
// (unified memory: [N/A] for memory) added as the third line.
const REAL_OUTPUT = [
  "0, GPU-5f0e8e5a-1c2b-4d7e-9a10-3b6c2d1e0f11, NVIDIA A100-SXM4-80GB, 81920, 31744, 42, 55",
  "1, GPU-7a1d2c3b-4e5f-6a7b-8c9d-0e1f2a3b4c5d, NVIDIA A100-SXM4-80GB, 81920, 4, 0, 31",
  "2, GPU-0b9c8d7e-6f5a-4b3c-2d1e-0f9a8b7c6d5e, NVIDIA GH200 480GB, [N/A], [N/A], 0, [N/A]",
].join("\n");

const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A directory holding an executable `nvidia-smi` with `body` (a shell script), and an env with it first on PATH. */
async function fakeNvidiaSmi(body: string): Promise<{ env: NodeJS.ProcessEnv; argsFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), "nvidia-smi-"));
  dirs.push(dir);
  const argsFile = join(dir, "args");
  await writeFile(join(dir, "nvidia-smi"), `#!/bin/sh\necho "$@" > ${argsFile}\n${body}\n`);
  await chmod(join(dir, "nvidia-smi"), 0o755);
  return { env: { ...process.env, PATH: `${dir}:${process.env["PATH"] ?? ""}` }, argsFile };
}

describe("reading GPUs from nvidia-smi", () => {
  it("asks the design's exact query and reads every GPU, MiB as bytes, [N/A] as absent", async () => {
    const { env, argsFile } = await fakeNvidiaSmi(`cat <<'EOF'\n${REAL_OUTPUT}\nEOF`);

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
    const { env } = await fakeNvidiaSmi(`echo '0, GPU-a, Tesla T4, 15360, 0, 0, 40'\necho 'Failed to initialize NVML: Driver/library version mismatch'`);

    const reading = await readGpus({ env });

    expect(reading.gpus.map((gpu) => gpu.name)).toEqual(["Tesla T4"]);
    expect(reading.skipped).toEqual([expect.stringContaining('"Failed to initialize NVML: Driver/library version mismatch"')]);
  });

  it("reports no GPUs and why when nvidia-smi is not on PATH", async () => {
    const reading = await readGpus({ command: "nvidia-smi-that-is-not-there" });

    expect(reading).toEqual({ gpus: [], problem: expect.stringMatching(/not on PATH/) as string, skipped: [] });
  });

  it("reports no GPUs and nvidia-smi's own words when it fails", async () => {
    const { env } = await fakeNvidiaSmi(`echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\nexit 9`);

    const reading = await readGpus({ env });

    expect(reading.gpus).toEqual([]);
    expect(reading.problem).toBe("nvidia-smi exited with status 9: NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.");
  });

  it("gives up on an nvidia-smi that hangs, after its timeout", async () => {
    const { env } = await fakeNvidiaSmi("exec sleep 30");

    const reading = await readGpus({ env, timeoutMs: 200 });

    expect(reading).toMatchObject({ gpus: [], problem: "nvidia-smi gave no answer within 200 ms (killed)" });
  });
});
