// What every scenario of one run shares: the process group (so everything is killed at the end), a temp
// directory, the etcd binary if there is one, the log, and whether to profile the registry.

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { EtcdBinary } from "./etcd.js";
import type { ProcessGroup } from "./processes.js";

export interface BenchContext {
  readonly processes: ProcessGroup;
  readonly tmp: string;
  readonly etcd: EtcdBinary | undefined;
  readonly quick: boolean;
  /** Where registry CPU profiles go (node --cpu-prof), when profiling was asked for. */
  readonly profileDir: string | undefined;
  log(line: string): void;
  /** A new, empty directory under the temp directory. */
  freshDir(name: string): Promise<string>;
}

export function createContext(fields: Omit<BenchContext, "freshDir">): BenchContext {
  let counter = 0;
  return {
    ...fields,
    async freshDir(name) {
      const dir = join(fields.tmp, `${String(++counter).padStart(3, "0")}-${name}`);
      await mkdir(dir, { recursive: true });
      return dir;
    },
  };
}
