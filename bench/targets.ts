// The servers under test, each a separate process pinned to the server core: the real `agent-registry
// serve` (dist/bundle/agent-registry.js, temp data directory, json or sqlite store, LOG_LEVEL=warn, ephemeral
// loopback ports), the bare grpc-js and connect-node echoes, and etcd. Each start resolves once the server
// is ready for load.

import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import type { StoreKind } from "../src/config/index.js";
import { type EtcdBinary, startEtcd } from "./etcd.js";
import { BENCH_BUILD, SERVER_CLI } from "./paths.js";
import type { Child, ProcessGroup } from "./processes.js";
import { PINNED_NODE_FLAGS, SERVER_CORE } from "./processes.js";
import type { TargetKind } from "./protocol.js";

export interface Target {
  readonly kind: TargetKind;
  readonly child: Child;
  /** host:port the load goes to (gRPC, or h2c for the connect echo). */
  readonly address: string;
  /** The registry's HTTP listener (Connect, /metrics); undefined for the others. */
  readonly httpUrl: string | undefined;
  /** From spawn to the line saying it serves (etcd: to its first granted lease), ms. */
  readonly startMs: number;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  readonly dataDir: string;
  readonly heartbeatIntervalS: number;
  readonly agentTimeoutS: number;
  /** REGISTRY_STORE: agents.json (json, the default) or registry.db (sqlite). */
  readonly store?: StoreKind;
  /** REGISTRY_MAX_STREAMS, for fleets past its default (20 000 streams). */
  readonly maxStreams?: number;
  /** Write a V8 CPU profile (node --cpu-prof) into this directory when the server exits. */
  readonly cpuProfileDir?: string;
}

export const TARGET_LABELS: Readonly<Record<TargetKind, string>> = {
  registry: "agent-registry",
  "echo-grpc": "bare grpc-js echo",
  "echo-connect": "bare connect-node echo",
  etcd: "etcd",
};

export async function startRegistry(processes: ProcessGroup, options: RegistryOptions): Promise<Target> {
  await mkdir(options.dataDir, { recursive: true });
  const nodeArgs = options.cpuProfileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`];
  const started = performance.now();
  const child = processes.spawn("agent-registry serve", process.execPath, [...nodeArgs, SERVER_CLI, "serve"], {
    core: SERVER_CORE,
    env: {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      REGISTRY_DATA_DIR: options.dataDir,
      REGISTRY_GRPC_LISTEN: "127.0.0.1:0",
      REGISTRY_HTTP_LISTEN: "127.0.0.1:0",
      LOG_LEVEL: "warn",
      HEARTBEAT_INTERVAL: String(options.heartbeatIntervalS),
      AGENT_TIMEOUT: String(options.agentTimeoutS),
      REGISTRY_STORE: options.store ?? "json",
      ...(options.maxStreams === undefined ? {} : { REGISTRY_MAX_STREAMS: String(options.maxStreams) }),
    },
  });
  const match = await waitForLine(child, /gRPC on (\S+) and HTTP on (\S+?);/, 30_000);
  return {
    kind: "registry",
    child,
    address: match[1] as string,
    httpUrl: match[2] as string,
    startMs: performance.now() - started,
    stop: async () => {
      await child.stop(10_000);
    },
  };
}

/** `keepaliveMs`: the grpc-js echo pings each connection this often, as the registry does (interval, 1-30 s). */
export async function startEcho(processes: ProcessGroup, kind: "echo-grpc" | "echo-connect", keepaliveMs: number): Promise<Target> {
  const script = join(BENCH_BUILD, kind === "echo-grpc" ? "echo-grpc-server.js" : "echo-connect-server.js");
  const args = [...PINNED_NODE_FLAGS, ...(kind === "echo-grpc" ? [script, "127.0.0.1:0", String(keepaliveMs)] : [script, "0"])];
  const started = performance.now();
  const child = processes.spawn(kind, process.execPath, args, { core: SERVER_CORE });
  const match = await waitForLine(child, /listening on (\S+)/, 30_000);
  return {
    kind,
    child,
    address: match[1] as string,
    httpUrl: undefined,
    startMs: performance.now() - started,
    stop: async () => {
      await child.stop(3000);
    },
  };
}

export async function startEtcdTarget(processes: ProcessGroup, binary: EtcdBinary, dataDir: string): Promise<Target> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const started = performance.now();
  const etcd = await startEtcd(processes, binary, dataDir, clientPort, peerPort);
  return {
    kind: "etcd",
    child: etcd.child,
    address: etcd.address,
    httpUrl: undefined,
    startMs: performance.now() - started,
    stop: async () => {
      await etcd.child.stop(5000);
    },
  };
}

/** Resolves with the first match of `pattern` in the child's output; rejects if it exits or times out. */
export function waitForLine(child: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      const match = pattern.exec(seen);
      if (match !== null) {
        done();
        resolve(match);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${child.name} did not print ${pattern} within ${timeoutMs / 1000} s: ${child.output().slice(-2000)}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      child.process.stdout?.off("data", onData);
    };
    child.process.stdout?.on("data", onData);
    void child.exited.then((exit) => {
      done();
      reject(new Error(`${child.name} exited (${exit.code ?? exit.signal}) before serving: ${child.output().slice(-2000)}`));
    });
  });
}

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
