// A real etcd for the tests (Debian's etcd-server 3.4, installed with apt-get when missing and running as
// root): one member or a cluster of three on loopback ports, each in a temp data directory, started and
// stopped by the test. `etcdMissing()` says why there is none, for a skip with a clear message.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdClient } from "../../src/store/etcd-client.js";
import { debianPackage } from "./debian-package.js";

let binary: string | undefined;
let missing: string | undefined;

/** Undefined when etcd can run here; otherwise why not. Installs etcd-server once if allowed. */
export function etcdMissing(): string | undefined {
  if (binary !== undefined || missing !== undefined) return missing;
  binary = existsSync("/usr/local/bin/etcd") ? "/usr/local/bin/etcd" : debianPackage("/usr/bin/etcd", "etcd-server");
  if (binary === undefined) missing = "etcd not found (/usr/bin/etcd) and it could not be installed: `apt-get install etcd-server` to run the etcd tests";
  return missing;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  child: ChildProcess;
  /** Kills the member with SIGKILL and waits for it to go. */
  kill(): Promise<void>;
  /** Starts the member again on the same data directory and ports. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** The client URLs, comma-separated, as REGISTRY_ETCD_ENDPOINTS takes them. */
  readonly endpoints: string;
  /** The member that leads the cluster now (by Maintenance Status). */
  leader(): Promise<EtcdMember>;
  stop(): Promise<void>;
}

/** Starts `size` members (1 or 3) and waits until the cluster answers. */
export async function startEtcd(size = 1): Promise<EtcdCluster> {
  const why = etcdMissing();
  if (why !== undefined || binary === undefined) throw new Error(why);
  const path = binary;
  const root = await mkdtemp(join(tmpdir(), "registry-etcd-"));
  const specs = [];
  for (let i = 0; i < size; i++) specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initialCluster = specs.map((spec) => `${spec.name}=http://127.0.0.1:${spec.peer}`).join(",");
  const members: EtcdMember[] = specs.map((spec) => {
    const clientUrl = `http://127.0.0.1:${spec.client}`;
    const args = [
      `--name=${spec.name}`,
      `--data-dir=${join(root, spec.name)}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${spec.peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${spec.peer}`,
      `--initial-cluster=${initialCluster}`,
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=error",
    ];
    const run = (): ChildProcess => spawn(path, args, { stdio: "ignore", env: { PATH: process.env["PATH"], HOME: process.env["HOME"] } });
    const member: EtcdMember = {
      name: spec.name,
      clientUrl,
      child: run(),
      async kill() {
        if (member.child.exitCode !== null || member.child.signalCode !== null) return;
        const gone = new Promise((resolve) => member.child.once("exit", resolve));
        member.child.kill("SIGKILL");
        await gone;
      },
      async restart() {
        member.child = run();
        await ready([clientUrl]);
      },
    };
    return member;
  });
  await ready(members.map((member) => member.clientUrl));
  return {
    members,
    endpoints: members.map((member) => member.clientUrl).join(","),
    async leader() {
      for (const member of members) {
        const client = new EtcdClient([member.clientUrl]);
        try {
          const status = await client.status();
          if (status.header?.memberId === status.leader) return member;
        } catch {
          // A member that is down leads nothing.
        } finally {
          client.close();
        }
      }
      throw new Error("no etcd member says it leads the cluster");
    },
    async stop() {
      for (const member of members) await member.kill();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Waits (up to 20 s) until a lease is granted through every one of `urls`: each member is up with a leader. */
async function ready(urls: readonly string[]): Promise<void> {
  const until = Date.now() + 20_000;
  for (const url of urls) {
    const client = new EtcdClient([url]);
    try {
      for (;;) {
        try {
          await client.leaseGrant(2);
          break;
        } catch (error) {
          if (Date.now() > until) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    } finally {
      client.close();
    }
  }
}
