// `npm run bench:replicas [-- --agents=N]`: three replicas on one etcd against one replica on sqlite, on
// this machine: a registration storm of N agents, then steady beats of N agents (CPU per beat of the
// replicas and of etcd, from /proc), and for the replicas the time from a kill -9 of one to every one of
// its nodes' streams being back on another (each node moves to the next address after a random wait below
// the interval, as the daemon does). Prints a Markdown table and writes bench/results/replicas-<time>.json;
// BENCHMARKS.md is edited by hand.

import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AgentRegistry,
  type HeartbeatRequest,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  type RegisterRequest,
  RegisterRequestSchema,
  type RegisterResponse,
} from "../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../src/grpc-service-definition.js";
import { findEtcd, startEtcd } from "./etcd.js";
import { RESULTS_DIR, SERVER_CLI } from "./paths.js";
import { type ProcSample, sampleProcess } from "./proc-stats.js";
import { type Child, ProcessGroup } from "./processes.js";

const INTERVAL_S = 2;
const TIMEOUT_S = 6;
const WARM_MS = 5000;
const WINDOW_MS = 15_000;
/** Streams per channel, below the server's default per-connection cap (1 000). */
const STREAMS_PER_CHANNEL = 500;
const STORM_CONCURRENCY = 64;

const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentRegistry), "AgentRegistry");
interface Stub {
  Register(request: RegisterRequest, callback: (error: grpc.ServiceError | null, response?: RegisterResponse) => void): void;
  Heartbeat(): grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse>;
}

const log = (line: string): void => console.error(line);
const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Server {
  readonly child: Child;
  readonly address: string;
}

async function startServer(group: ProcessGroup, name: string, env: Record<string, string>): Promise<Server> {
  const child = group.spawn(name, process.execPath, [SERVER_CLI, "serve"], {
    env: {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      REGISTRY_GRPC_LISTEN: "127.0.0.1:0",
      REGISTRY_HTTP_LISTEN: "127.0.0.1:0",
      HEARTBEAT_INTERVAL: String(INTERVAL_S),
      AGENT_TIMEOUT: String(TIMEOUT_S),
      LOG_LEVEL: "warn",
      ...env,
    },
  });
  const until = Date.now() + 30_000;
  for (;;) {
    const match = /gRPC on (\S+) and HTTP/.exec(child.output());
    if (match !== null) return { child, address: match[1] as string };
    if (Date.now() > until) throw new Error(`${name} did not start: ${child.output().slice(-2000)}`);
    await wait(50);
  }
}

function channels(address: string, count: number): Stub[] {
  return Array.from({ length: count }, () => new Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }) as unknown as Stub);
}

/** Registers `n` agents over `stubs` (round-robin), `STORM_CONCURRENCY` at a time; the ids and the rate. */
async function storm(stubs: readonly Stub[], n: number): Promise<{ ids: string[]; perSecond: number }> {
  const ids: string[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: STORM_CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const stub = stubs[i % stubs.length] as Stub;
        const id = await new Promise<string>((resolve, reject) =>
          stub.Register(create(RegisterRequestSchema, { hostname: `bench-${i}`, ipAddress: "10.9.0.1", port: 11434 }), (error, response) =>
            error === null ? resolve(response?.agent?.id ?? "") : reject(error),
          ),
        );
        ids[i] = id;
      }
    }),
  );
  return { ids, perSecond: n / ((performance.now() - started) / 1000) };
}

/** One simulated node: beats every interval on a stream to its replica, moves to the next when it breaks. */
class Beater {
  acks = 0;
  /** performance.now() of the first ack on the current stream. */
  firstAckAt: number | undefined;
  private stream: grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly id: string,
    private readonly stubsByReplica: ReadonlyArray<readonly Stub[]>,
    public replica: number,
    private readonly slot: number,
  ) {}

  start(): void {
    const stubs = this.stubsByReplica[this.replica] as readonly Stub[];
    const stream = (stubs[Math.floor(this.slot / STREAMS_PER_CHANNEL) % stubs.length] as Stub).Heartbeat();
    this.stream = stream;
    this.firstAckAt = undefined;
    stream.on("data", () => {
      this.acks++;
      this.firstAckAt ??= performance.now();
    });
    stream.on("error", () => this.broken(stream));
    stream.on("end", () => this.broken(stream));
    const beat = (): void => {
      if (this.stream !== stream || this.stopped) return;
      stream.write(create(HeartbeatRequestSchema, { agentId: this.id }));
      this.timer = setTimeout(beat, INTERVAL_S * 1000);
    };
    // Spread at first; on a new stream after a move, a beat at once, as the daemon does.
    if (this.moved) beat();
    else this.timer = setTimeout(beat, Math.random() * INTERVAL_S * 1000);
  }

  private moved = false;

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
  }

  private broken(stream: grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse>): void {
    if (this.stream !== stream || this.stopped) return;
    this.stream = undefined;
    clearTimeout(this.timer);
    this.replica = (this.replica + 1) % this.stubsByReplica.length;
    this.moved = true;
    // The daemon's rule: a random wait below the told interval (here its first window, 0.5 s).
    setTimeout(() => this.start(), Math.random() * 500);
  }
}

async function cpuOf(children: readonly Child[]): Promise<ProcSample[]> {
  return Promise.all(children.map((child) => sampleProcess(child.pid)));
}

const cpuSeconds = (from: readonly ProcSample[], to: readonly ProcSample[]): number => to.reduce((sum, sample, i) => sum + sample.cpuSeconds - (from[i]?.cpuSeconds ?? 0), 0);

interface Run {
  readonly setup: string;
  readonly agents: number;
  readonly registrationsPerSecond: number;
  readonly beatsPerSecond: number;
  readonly replicaCpuUsPerBeat: number;
  readonly etcdCpuUsPerBeat: number | undefined;
  readonly failoverMs?: { readonly moved: number; readonly p50: number; readonly max: number } | undefined;
}

async function measure(setup: string, servers: readonly Server[], etcd: Child | undefined, agents: number, failover: boolean): Promise<Run> {
  const perReplica = Math.ceil(agents / servers.length / STREAMS_PER_CHANNEL) + 1;
  const stubs = servers.map((server) => channels(server.address, perReplica));
  log(`${setup}: storm of ${agents} Registers ...`);
  const { ids, perSecond } = await storm(stubs.flat(), agents);
  log(`  ${Math.round(perSecond)}/s; ${agents} streams ...`);
  const beaters = ids.map((id, i) => new Beater(id, stubs, i % servers.length, Math.floor(i / servers.length)));
  for (const beater of beaters) beater.start();
  await wait(WARM_MS);
  const acksBefore = beaters.reduce((sum, b) => sum + b.acks, 0);
  const replicasBefore = await cpuOf(servers.map((s) => s.child));
  const etcdBefore = etcd === undefined ? undefined : await sampleProcess(etcd.pid);
  const started = performance.now();
  await wait(WINDOW_MS);
  const replicasAfter = await cpuOf(servers.map((s) => s.child));
  const etcdAfter = etcd === undefined ? undefined : await sampleProcess(etcd.pid);
  const seconds = (performance.now() - started) / 1000;
  const beats = beaters.reduce((sum, b) => sum + b.acks, 0) - acksBefore;
  const run: Run = {
    setup,
    agents,
    registrationsPerSecond: Math.round(perSecond),
    beatsPerSecond: Math.round(beats / seconds),
    replicaCpuUsPerBeat: Math.round((cpuSeconds(replicasBefore, replicasAfter) / beats) * 1e6),
    etcdCpuUsPerBeat: etcdBefore === undefined || etcdAfter === undefined ? undefined : Math.round(((etcdAfter.cpuSeconds - etcdBefore.cpuSeconds) / beats) * 1e6),
  };
  let failoverMs: Run["failoverMs"];
  if (failover) {
    const moved = beaters.filter((b) => b.replica === 0);
    log(`  kill -9 of replica 0 (${moved.length} streams) ...`);
    const killedAt = performance.now();
    process.kill(servers[0]?.child.pid ?? 0, "SIGKILL");
    const until = killedAt + 30_000;
    while (moved.some((b) => b.replica === 0 || b.firstAckAt === undefined || b.firstAckAt < killedAt) && performance.now() < until) await wait(20);
    const times = moved.map((b) => (b.firstAckAt ?? Infinity) - killedAt).sort((a, b) => a - b);
    failoverMs = { moved: moved.length, p50: Math.round(times[Math.floor(times.length / 2)] ?? NaN), max: Math.round(times.at(-1) ?? NaN) };
  }
  for (const beater of beaters) beater.stop();
  return { ...run, failoverMs };
}

async function main(): Promise<void> {
  const agentsArg = process.argv.find((arg) => arg.startsWith("--agents="));
  const agents = agentsArg === undefined ? 10_000 : Number(agentsArg.split("=")[1]);
  const group = new ProcessGroup();
  process.on("SIGINT", () => {
    group.killAll();
    process.exit(130);
  });
  const dir = mkdtempSync(join(tmpdir(), "bench-replicas-"));
  const runs: Run[] = [];
  try {
    const single = await startServer(group, "sqlite", { REGISTRY_STORE: "sqlite", REGISTRY_DATA_DIR: join(dir, "sqlite") });
    runs.push(await measure("1 replica, sqlite", [single], undefined, agents, false));
    await single.child.stop();

    const binary = findEtcd(log);
    if (typeof binary === "string") throw new Error(binary);
    const etcd = await startEtcd(group, binary, join(dir, "etcd"), 23790 + Math.floor(Math.random() * 100), 24790 + Math.floor(Math.random() * 100));
    const endpoints = `http://${etcd.address}`;
    const replicas: Server[] = [];
    for (let i = 0; i < 3; i++) {
      replicas.push(await startServer(group, `replica-${i}`, { REGISTRY_STORE: "etcd", REGISTRY_ETCD_ENDPOINTS: endpoints, REGISTRY_DATA_DIR: join(dir, `r${i}`) }));
    }
    runs.push(await measure("3 replicas, 1 etcd", replicas, etcd.child, agents, true));
  } finally {
    group.killAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `| setup | agents | Registers/s (storm) | beats/s | replicas' CPU per beat | etcd's CPU per beat | kill -9 → moved streams back (p50 / max) |`,
    `|---|---:|---:|---:|---:|---:|---|`,
    ...runs.map(
      (run) =>
        `| ${run.setup} | ${run.agents} | ${run.registrationsPerSecond} | ${run.beatsPerSecond} | ${run.replicaCpuUsPerBeat} µs | ${run.etcdCpuUsPerBeat === undefined ? "—" : `${run.etcdCpuUsPerBeat} µs`} | ${run.failoverMs === undefined ? "—" : `${run.failoverMs.moved} streams: ${run.failoverMs.p50} / ${run.failoverMs.max} ms`} |`,
    ),
  ];
  console.log(lines.join("\n"));
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(join(RESULTS_DIR, `replicas-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify({ intervalSeconds: INTERVAL_S, runs }, null, 2) + "\n");
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
