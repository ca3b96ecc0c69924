// The load generator: a process of its own (pinned to the other core than the server) that plays a fleet
// of node daemons over real gRPC with @grpc/grpc-js, as daemons do. Each simulated agent registers (or, for
// etcd, grants a lease) and then holds its own bidi stream: beating on a timer (steady load) or as fast as
// its acks return (the ceiling). It also runs the registration storm, on node:http2 directly
// (h2-unary-client.ts: grpc-js's client could not issue Registers as fast as the server takes them). Driven
// by run.ts over IPC (protocol.ts); it measures only what a client sees: round trips and errors by status code.

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { create, toBinary } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { monitorEventLoopDelay } from "node:perf_hooks";
import {
  AgentRegistry,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  type RegisterRequest,
  RegisterRequestSchema,
} from "../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../src/grpc-service-definition.js";
import { H2UnaryClient, UnaryCallError } from "./h2-unary-client.js";
import { Samples } from "./latency.js";
import { ETCD_LEASE_PROTO } from "./paths.js";
import { BENCH_OLLAMA_VERSION, type Command, type Envelope, type FleetReady, type FleetSpec, type Reply, type StormResult, type TargetKind, type WindowStats } from "./protocol.js";

/**
 * Each channel its own connection (a private subchannel pool), as daemons on separate hosts have; the
 * daemon's keepalive settings (src/agent/registry-connection.ts).
 */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
};
const CALL_DEADLINE_MS = 60_000;
/** A stream with this many beats unanswered gets no more until the server catches up. */
const MAX_IN_FLIGHT = 64;
/** Steady beats are spread over the interval in this many slots (5 ms each at 1 beat/s). */
const SLOTS = 200;

type Method = grpc.MethodDefinition<unknown, unknown>;

interface Stream {
  readonly index: number;
  /** The agent id (registry, echoes) or the lease id (etcd, a decimal string). */
  id: string;
  call: grpc.ClientDuplexStream<unknown, unknown> | undefined;
  seq: number;
  /** performance.now() of each unanswered beat, oldest first (acks come in order). */
  readonly sentAt: number[];
  silent: boolean;
  open: boolean;
  /** server_time (ms since the epoch) of the last ack, where the ack carries one. */
  lastServerTime: number | null;
  firstAck: ((error?: Error) => void) | undefined;
}

/** How one kind of server is spoken to: which calls set an agent up, and what a beat and an ack are. */
interface Driver {
  readonly register: Method;
  readonly stream: Method;
  registerRequest(stream: Stream): unknown;
  /** Takes what the register call answered (etcd: the lease id). */
  registered(stream: Stream, response: unknown): void;
  beat(stream: Stream, first: boolean): unknown;
  /** The ack's server_time in ms, if it has one; throws if the ack says the agent is gone. */
  ack(response: unknown): number | null;
}

function registryDriver(): Driver {
  const service = grpcServiceDefinition(AgentRegistry) as unknown as Record<string, Method>;
  return {
    register: service["Register"] as Method,
    stream: service["Heartbeat"] as Method,
    registerRequest: (stream) =>
      create(RegisterRequestSchema, {
        agentId: stream.id,
        hostname: `bench-node-${String(stream.index).padStart(5, "0")}`,
        port: 11434,
        ollamaVersion: BENCH_OLLAMA_VERSION,
        labels: { gpu: "a100", zone: stream.index % 2 === 0 ? "eu" : "us" },
      }),
    registered: () => {},
    // As the daemon does: the first beat names the agent and states what it reports; the rest carry seq.
    beat: (stream, first) =>
      create(
        HeartbeatRequestSchema,
        first ? { agentId: stream.id, seq: BigInt(stream.seq), ollamaVersion: BENCH_OLLAMA_VERSION, draining: false } : { seq: BigInt(stream.seq) },
      ),
    ack: (response) => {
      const time = (response as HeartbeatResponse).serverTime;
      return time === undefined ? null : Number(time.seconds) * 1000 + Math.floor(time.nanos / 1_000_000);
    },
  };
}

function etcdDriver(ttlSeconds: number): Driver {
  const definition = protoLoader.loadSync(ETCD_LEASE_PROTO, { keepCase: true, longs: String, defaults: true });
  const lease = definition["etcdserverpb.Lease"] as unknown as Record<string, Method>;
  return {
    register: lease["LeaseGrant"] as Method,
    stream: lease["LeaseKeepAlive"] as Method,
    registerRequest: () => ({ TTL: ttlSeconds, ID: 0 }),
    registered: (stream, response) => {
      const { ID, error } = response as { ID: string; error: string };
      if (error !== "") throw new Error(`LeaseGrant: ${error}`);
      stream.id = ID;
    },
    beat: (stream) => ({ ID: stream.id }),
    ack: (response) => {
      if ((response as { TTL: string }).TTL === "0") throw new LeaseGone();
      return null;
    },
  };
}

class LeaseGone extends Error {
  constructor() {
    super("the lease expired (keepalive answered TTL 0)");
  }
}

function driverFor(kind: TargetKind, ttlSeconds: number): Driver {
  return kind === "etcd" ? etcdDriver(ttlSeconds) : registryDriver();
}

function codeName(code: number): string {
  return grpc.status[code] ?? String(code);
}

function unary(client: grpc.Client, method: Method, request: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (error, response) => (error === null ? resolve(response) : reject(error)),
    );
  });
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at once. */
async function pool(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

class Fleet {
  private readonly driver: Driver;
  private readonly clients: grpc.Client[] = [];
  private readonly streams: Stream[] = [];
  private readonly samples = new Samples();
  private readonly errors: Record<string, number> = {};
  private mode: "idle" | "steady" | "closed" = "idle";
  private ticker: NodeJS.Timeout | undefined;
  private markedAt = performance.now();
  private sent = 0;
  private acked = 0;
  private skipped = 0;
  private closing = false;
  /** The generator's own event-loop delay: a late client inflates the acks' round trips too. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly spec: FleetSpec) {
    this.loopDelay.enable();
    this.driver = driverFor(spec.kind, spec.leaseTtlSeconds);
    for (let i = 0; i < spec.connections; i++) {
      this.clients.push(new grpc.Client(spec.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS));
    }
  }

  async setUp(): Promise<FleetReady> {
    const started = performance.now();
    const latency = new Samples();
    const setupErrors: Record<string, number> = {};
    await pool(this.spec.agents, this.spec.setupConcurrency, async (index) => {
      const stream: Stream = {
        index,
        id: this.spec.agentIds?.[index] ?? randomUUID(),
        call: undefined,
        seq: 0,
        sentAt: [],
        silent: false,
        open: false,
        lastServerTime: null,
        firstAck: undefined,
      };
      try {
        const client = this.clients[index % this.clients.length] as grpc.Client;
        if (this.spec.agentIds === undefined) {
          const t0 = performance.now();
          this.driver.registered(stream, await unary(client, this.driver.register, this.driver.registerRequest(stream)));
          latency.add(performance.now() - t0);
        }
        await this.open(stream, client);
        this.streams.push(stream);
      } catch (error) {
        const code = (error as Partial<grpc.ServiceError>).code;
        const key = `setup:${code === undefined ? (error as Error).message : codeName(code)}`;
        setupErrors[key] = (setupErrors[key] ?? 0) + 1;
      }
    });
    this.streams.sort((a, b) => a.index - b.index);
    return {
      setupMs: performance.now() - started,
      streamsOpen: this.streams.filter((s) => s.open).length,
      setupErrors,
      setupLatency: latency.summary(),
    };
  }

  /** Opens the agent's stream and sends its first beat; resolves on the first ack. */
  private open(stream: Stream, client: grpc.Client): Promise<void> {
    const method = this.driver.stream;
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata(), {});
    stream.call = call;
    stream.open = true;
    call.on("data", (response: unknown) => this.onAck(stream, response));
    call.on("status", (status: grpc.StatusObject) => {
      stream.open = false;
      if (stream.firstAck !== undefined) stream.firstAck(new Error(`stream ended with ${codeName(status.code)}: ${status.details}`));
      else if (!this.closing) this.count(`stream:${codeName(status.code)}`);
    });
    call.on("error", () => {}); // reported through "status"
    return new Promise<void>((resolve, reject) => {
      stream.firstAck = (error) => {
        stream.firstAck = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
      this.send(stream);
    });
  }

  private send(stream: Stream): void {
    if (!stream.open || stream.silent || stream.call === undefined) return;
    if (stream.sentAt.length >= MAX_IN_FLIGHT) {
      this.skipped++;
      return;
    }
    stream.seq++;
    stream.sentAt.push(performance.now());
    this.sent++;
    stream.call.write(this.driver.beat(stream, stream.seq === 1));
  }

  private onAck(stream: Stream, response: unknown): void {
    const sentAt = stream.sentAt.shift();
    if (sentAt !== undefined) this.samples.add(performance.now() - sentAt);
    this.acked++;
    try {
      stream.lastServerTime = this.driver.ack(response) ?? stream.lastServerTime;
    } catch (error) {
      this.count(error instanceof LeaseGone ? "ack:LEASE_EXPIRED" : "ack:INVALID");
      stream.call?.cancel();
      return;
    }
    if (stream.firstAck !== undefined) stream.firstAck();
    else if (this.mode === "closed") this.send(stream);
  }

  private count(key: string): void {
    this.errors[key] = (this.errors[key] ?? 0) + 1;
  }

  /** Every stream beats once per `intervalMs`, spread evenly over the interval. */
  steady(intervalMs: number): void {
    this.stopBeating();
    this.mode = "steady";
    const buckets: Stream[][] = Array.from({ length: SLOTS }, () => []);
    for (const stream of this.streams) (buckets[stream.index % SLOTS] as Stream[]).push(stream);
    const slotMs = intervalMs / SLOTS;
    const start = performance.now();
    let done = 0;
    const tick = (): void => {
      // Catch up on every slot that is due, so a late timer sends late beats rather than fewer.
      const due = Math.floor((performance.now() - start) / slotMs);
      for (; done <= due; done++) for (const stream of buckets[done % SLOTS] as Stream[]) this.send(stream);
    };
    this.ticker = setInterval(tick, Math.max(1, Math.min(5, slotMs)));
  }

  /** Every stream keeps `window` beats in flight: the next leaves when an ack returns. */
  closedLoop(window: number): void {
    this.stopBeating();
    this.mode = "closed";
    for (const stream of this.streams) for (let i = stream.sentAt.length; i < window; i++) this.send(stream);
  }

  mark(): void {
    this.markedAt = performance.now();
    this.loopDelay.reset();
    this.samples.reset();
    this.sent = 0;
    this.acked = 0;
    this.skipped = 0;
  }

  collect(): WindowStats {
    return {
      windowMs: performance.now() - this.markedAt,
      sent: this.sent,
      acked: this.acked,
      skipped: this.skipped,
      streamsOpen: this.streams.filter((s) => s.open).length,
      latency: this.samples.summary(),
      errors: { ...this.errors },
      // The histogram holds nanoseconds, and the 10 ms sampling resolution on top of the real delay.
      loopDelayMs: {
        p50: Math.max(0, this.loopDelay.percentile(50) / 1e6 - 10),
        p99: Math.max(0, this.loopDelay.percentile(99) / 1e6 - 10),
        max: Math.max(0, this.loopDelay.max / 1e6 - 10),
      },
    };
  }

  /**
   * Stops `count` agents beating, silently (their streams stay open), spread evenly over the fleet and so
   * over its connections: with 1 000 of 10 000, every tenth.
   */
  silence(count: number): string[] {
    const ids: string[] = [];
    const n = this.streams.length;
    for (const stream of this.streams) {
      if (Math.floor(((stream.index + 1) * count) / n) > Math.floor((stream.index * count) / n)) {
        stream.silent = true;
        ids.push(stream.id);
      }
    }
    return ids;
  }

  /** Lets silenced agents beat again from their next tick. */
  resume(ids: readonly string[]): void {
    const wanted = new Set(ids);
    for (const stream of this.streams) if (wanted.has(stream.id)) stream.silent = false;
  }

  lastAcks(ids: readonly string[]): (number | null)[] {
    const byId = new Map(this.streams.map((s) => [s.id, s]));
    return ids.map((id) => byId.get(id)?.lastServerTime ?? null);
  }

  private stopBeating(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.mode = "idle";
  }

  close(): void {
    this.closing = true;
    this.loopDelay.disable();
    this.stopBeating();
    for (const stream of this.streams) stream.call?.cancel();
    for (const client of this.clients) client.close();
  }
}

/** N Registers from 500 concurrent callers, each waiting for its durable acknowledgement. */
class Storm {
  private readonly driver = registryDriver();
  private readonly clients: H2UnaryClient[] = [];

  constructor(
    address: string,
    private readonly callers: number,
    connections: number,
  ) {
    for (let i = 0; i < connections; i++) this.clients.push(new H2UnaryClient(address));
  }

  /** Connects every client first, so the storm measures registrations, not TCP handshakes. */
  async prepare(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.ready(CALL_DEADLINE_MS)));
  }

  async run(total: number): Promise<StormResult> {
    const latency = new Samples();
    const errors: Record<string, number> = {};
    let ok = 0;
    const started = performance.now();
    let next = 0;
    const path = this.driver.register.path;
    const caller = async (c: number): Promise<void> => {
      const client = this.clients[c % this.clients.length] as H2UnaryClient;
      while (next < total) {
        const index = next++;
        const stream = { index, id: randomUUID() } as Stream;
        const t0 = performance.now();
        try {
          await client.call(path, toBinary(RegisterRequestSchema, this.driver.registerRequest(stream) as RegisterRequest), CALL_DEADLINE_MS);
          latency.add(performance.now() - t0);
          ok++;
        } catch (error) {
          const key = error instanceof UnaryCallError ? codeName(error.code) : (error as Error).message;
          errors[key] = (errors[key] ?? 0) + 1;
        }
      }
    };
    await Promise.all(Array.from({ length: this.callers }, (_, c) => caller(c)));
    return { durationMs: performance.now() - started, ok, latency: latency.summary(), errors };
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}

let fleet: Fleet | undefined;
let storm: Storm | undefined;

async function handle(command: Command): Promise<Reply> {
  switch (command.op) {
    case "fleet":
      fleet?.close();
      fleet = new Fleet(command.spec);
      return { ev: "fleetReady", ready: await fleet.setUp() };
    case "steady":
      requireFleet().steady(command.intervalMs);
      return { ev: "ok" };
    case "closedLoop":
      requireFleet().closedLoop(command.window);
      return { ev: "ok" };
    case "mark":
      requireFleet().mark();
      return { ev: "ok" };
    case "collect":
      return { ev: "window", stats: requireFleet().collect() };
    case "silence":
      return { ev: "silenced", ids: requireFleet().silence(command.count) };
    case "resume":
      requireFleet().resume(command.ids);
      return { ev: "ok" };
    case "lastAcks":
      return { ev: "lastAcks", serverTimes: requireFleet().lastAcks(command.ids) };
    case "stormPrepare":
      storm?.close();
      storm = new Storm(command.address, command.callers, command.connections);
      await storm.prepare();
      return { ev: "ok" };
    case "stormRun":
      if (storm === undefined) throw new Error("stormRun before stormPrepare");
      return { ev: "storm", result: await storm.run(command.total) };
    case "shutdown":
      fleet?.close();
      storm?.close();
      setTimeout(() => process.exit(0), 200).unref();
      return { ev: "ok" };
  }
}

function requireFleet(): Fleet {
  if (fleet === undefined) throw new Error("no fleet: send a fleet command first");
  return fleet;
}

if (process.send === undefined) {
  process.stderr.write("load-generator.js is started by bench/run.ts over IPC; run `npm run bench` instead\n");
  process.exit(2);
}
process.on("message", (envelope: Envelope<Command>) => {
  handle(envelope.body).then(
    (body) => process.send?.({ id: envelope.id, body }),
    (error: unknown) => process.send?.({ id: envelope.id, body: { ev: "error", message: String((error as Error).stack ?? error) } }),
  );
});
// The orchestrator is gone: nobody will stop us.
process.on("disconnect", () => process.exit(1));
