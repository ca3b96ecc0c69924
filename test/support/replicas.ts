// Replicas of the real server on one etcd, for the etcd tests: each a `serve` process on fixed loopback
// ports (so a replica killed and started again is where the daemons look for it), sharing a key prefix.

import { join } from "node:path";
import { freePort } from "./fake-ollama.js";
import { type ServerProcess, startServerProcess } from "./server-process.js";

export interface Replica {
  readonly grpcAddress: string;
  readonly httpUrl: string;
  process: ServerProcess;
  /** kill -9, and wait until it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same ports. */
  restart(): Promise<void>;
}

export async function startReplicas(
  count: number,
  dataDir: string,
  endpoints: string,
  env: Record<string, string>,
): Promise<Replica[]> {
  const replicas: Replica[] = [];
  const used = new Set<number>();
  const port = async (): Promise<number> => {
    let next = await freePort();
    while (used.has(next)) next = await freePort();
    used.add(next);
    return next;
  };
  for (let i = 0; i < count; i++) {
    const grpcPort = await port();
    const httpPort = await port();
    const start = (): Promise<ServerProcess> =>
      startServerProcess(join(dataDir, `replica-${i}`), {
        REGISTRY_STORE: "etcd",
        REGISTRY_ETCD_ENDPOINTS: endpoints,
        REGISTRY_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
        REGISTRY_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
        ...env,
      });
    const replica: Replica = {
      grpcAddress: `127.0.0.1:${grpcPort}`,
      httpUrl: `http://127.0.0.1:${httpPort}`,
      process: await start(),
      async kill() {
        const { child } = replica.process;
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        await replica.process.exited;
      },
      async restart() {
        replica.process = await start();
      },
    };
    replicas.push(replica);
  }
  return replicas;
}
