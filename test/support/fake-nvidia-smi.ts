// A stand-in for nvidia-smi: an executable script in a temp directory that prints what a real one prints for
// the design's query, and a PATH with that directory first. The output is copied from real boards: several
// GPUs, MiB without units, [N/A] where a board (a GH200's unified memory) reports no figure.

import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REAL_NVIDIA_SMI_OUTPUT = [
  "0, GPU-5f0e8e5a-1c2b-4d7e-9a10-3b6c2d1e0f11, NVIDIA A100-SXM4-80GB, 81920, 31744, 42, 55",
  "1, GPU-7a1d2c3b-4e5f-6a7b-8c9d-0e1f2a3b4c5d, NVIDIA A100-SXM4-80GB, 81920, 4, 0, 31",
  "2, GPU-0b9c8d7e-6f5a-4b3c-2d1e-0f9a8b7c6d5e, NVIDIA GH200 480GB, [N/A], [N/A], 0, [N/A]",
].join("\n");

export interface FakeNvidiaSmi {
  /** PATH with the fake first. */
  readonly path: string;
  readonly env: NodeJS.ProcessEnv;
  /** Where the script writes the arguments it was called with. */
  readonly argsFile: string;
  remove(): Promise<void>;
}

/** A fake whose script body is `body` (shell); by default it prints REAL_NVIDIA_SMI_OUTPUT. */
export async function fakeNvidiaSmi(body = `cat <<'EOF'\n${REAL_NVIDIA_SMI_OUTPUT}\nEOF`): Promise<FakeNvidiaSmi> {
  const dir = await mkdtemp(join(tmpdir(), "nvidia-smi-"));
  const argsFile = join(dir, "args");
  await writeFile(join(dir, "nvidia-smi"), `#!/bin/sh\necho "$@" > ${argsFile}\n${body}\n`);
  await chmod(join(dir, "nvidia-smi"), 0o755);
  const path = `${dir}:${process.env["PATH"] ?? ""}`;
  return { path, env: { ...process.env, PATH: path }, argsFile, remove: () => rm(dir, { recursive: true, force: true }) };
}
