// etcd as the peer baseline: finds /usr/bin/etcd, or installs Debian's etcd-server (3.4) with apt-get
// when running as root; starts it on loopback ports in a temp data directory, pinned to the server core,
// and waits until it grants a lease. Nothing of etcd is kept in the repository.

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { Child, ProcessGroup } from "./processes.js";
import { SERVER_CORE } from "./processes.js";
import { ETCD_LEASE_PROTO } from "./paths.js";

const CANDIDATES = ["/usr/bin/etcd", "/usr/local/bin/etcd"];

export interface EtcdBinary {
  readonly path: string;
  readonly version: string;
}

/** The etcd binary, installing it if allowed; or a sentence saying why there is none. */
export function findEtcd(log: (line: string) => void): EtcdBinary | string {
  let path = CANDIDATES.find((candidate) => existsSync(candidate));
  if (path === undefined) {
    if (process.getuid?.() !== 0) return "etcd not found (/usr/bin/etcd) and not root, so not installed: `apt-get install etcd-server` to compare with it";
    log("installing etcd-server with apt-get (Debian's etcd 3.4) ...");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const install = (): boolean =>
      spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "etcd-server"], { env, stdio: "ignore", timeout: 300_000 }).status === 0;
    if (!install()) {
      spawnSync("apt-get", ["update"], { env, stdio: "ignore", timeout: 300_000 });
      if (!install()) return "etcd-server could not be installed with apt-get; the etcd baseline is skipped";
    }
    path = CANDIDATES.find((candidate) => existsSync(candidate));
    if (path === undefined) return "etcd-server installed but no etcd binary found; the etcd baseline is skipped";
  }
  let version = "unknown";
  try {
    const text = execFileSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 });
    version = /etcd Version: (\S+)/.exec(text)?.[1] ?? text.split("\n")[0] ?? version;
  } catch {
    // The version is for the report only.
  }
  return { path, version };
}

export interface EtcdProcess {
  readonly child: Child;
  readonly address: string;
}

export async function startEtcd(
  processes: ProcessGroup,
  binary: EtcdBinary,
  dataDir: string,
  clientPort: number,
  peerPort: number,
): Promise<EtcdProcess> {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child = processes.spawn(
    "etcd",
    binary.path,
    [
      "--name=bench",
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=bench=${peer}`,
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
    ],
    { core: SERVER_CORE, env: { PATH: process.env["PATH"], HOME: process.env["HOME"] } },
  );
  const address = `127.0.0.1:${clientPort}`;
  await waitForLease(address, child);
  return { child, address };
}

/** Polls LeaseGrant until etcd answers (it elects itself leader first), for up to 20 s. */
async function waitForLease(address: string, child: Child): Promise<void> {
  const definition = protoLoader.loadSync(ETCD_LEASE_PROTO, { keepCase: true, longs: String, defaults: true });
  const grant = (definition["etcdserverpb.Lease"] as unknown as Record<string, grpc.MethodDefinition<unknown, unknown>>)["LeaseGrant"];
  if (grant === undefined) throw new Error(`${ETCD_LEASE_PROTO} has no LeaseGrant`);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  let exited = false;
  void child.exited.then(() => (exited = true));
  try {
    const until = Date.now() + 20_000;
    for (;;) {
      if (exited) throw new Error(`etcd exited at start: ${child.output().slice(-2000)}`);
      const ok = await new Promise<boolean>((resolve) =>
        client.makeUnaryRequest(grant.path, grant.requestSerialize, grant.responseDeserialize, { TTL: 5, ID: 0 }, new grpc.Metadata(), { deadline: Date.now() + 1000 }, (error) =>
          resolve(error === null),
        ),
      );
      if (ok) return;
      if (Date.now() > until) throw new Error(`etcd did not grant a lease within 20 s: ${child.output().slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    client.close();
  }
}
