// A fleet of simulated node daemons for reliability tests: each registers, holds one Heartbeat stream,
// beats at the interval the server returned, and on any stream failure reconnects after a fully jittered
// backoff (re-registering with the same id on NOT_FOUND), as the real daemon does. Agents share a few
// gRPC connections so a test process can carry thousands.

import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { v4 } from "uuid";
import {
  AgentRegistry,
  type HeartbeatRequest,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  type RegisterRequest,
  RegisterRequestSchema,
  type RegisterResponse,
} from "../../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../../src/grpc-service-definition.js";

interface RawClient extends grpc.Client {
  Register(request: RegisterRequest, callback: (error: grpc.ServiceError | null, response: RegisterResponse) => void): void;
  Heartbeat(): grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse>;
}

export interface FleetOptions {
  readonly address: string;
  readonly size: number;
  /** Connections the agents share (round robin). */
  readonly connections?: number;
  /** Cap of the full-jitter reconnect backoff, ms. */
  readonly backoffCapMs?: number;
  readonly backoffBaseMs?: number;
}

export interface FleetStats {
  registered: number;
  beatsAcked: number;
  /** Stream (re)connections after the first one of each agent. */
  reconnects: number;
  /**
   * When agents opened the stream that brought them back after losing one (ms since epoch): the client's
   * own timing, what jitter spreads, not when the busy server got round to acknowledging it.
   */
  reconnectTimes: number[];
  errors: Map<string, number>;
}

class SimAgent {
  readonly id = v4();
  private call: grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0n;
  private attempts = 0;
  private connectedOnce = false;
  stopped = false;
  silent = false;

  constructor(
    private readonly client: RawClient,
    readonly hostname: string,
    private readonly fleet: SimFleet,
  ) {}

  start(): void {
    this.register();
  }

  private register(): void {
    if (this.stopped) return;
    this.client.Register(
      create(RegisterRequestSchema, { agentId: this.id, hostname: this.hostname, ipAddress: "10.0.0.1" }),
      (error, response) => {
        if (error !== null) return this.retry(error.code);
        this.fleet.stats.registered++;
        this.connect(Number(response.heartbeatInterval?.seconds ?? 1n) * 1000 + (response.heartbeatInterval?.nanos ?? 0) / 1e6);
      },
    );
  }

  private connect(intervalMs: number): void {
    if (this.stopped) return;
    const call = this.client.Heartbeat();
    this.call = call;
    const openedAt = Date.now();
    let acked = false;
    call.on("data", () => {
      this.fleet.stats.beatsAcked++;
      if (!acked) {
        acked = true;
        this.attempts = 0;
        if (this.connectedOnce) {
          this.fleet.stats.reconnects++;
          this.fleet.stats.reconnectTimes.push(openedAt);
        }
        this.connectedOnce = true;
      }
    });
    call.on("error", () => {}); // handled through "status"
    call.on("status", (status: grpc.StatusObject) => {
      clearInterval(this.timer);
      this.timer = undefined;
      if (this.call !== call || this.stopped) return;
      this.call = undefined;
      if (status.code === grpc.status.NOT_FOUND) this.retry(status.code, () => this.register());
      else this.retry(status.code, () => this.connect(intervalMs));
    });
    const beat = (): void => {
      if (this.silent) return;
      call.write(create(HeartbeatRequestSchema, { agentId: this.id, seq: ++this.seq }));
    };
    beat();
    this.timer = setInterval(beat, intervalMs);
  }

  private retry(code: grpc.status, then: () => void = () => this.register()): void {
    this.fleet.count(grpc.status[code] ?? String(code));
    if (this.stopped) return;
    const cap = Math.min(this.fleet.backoffCapMs, this.fleet.backoffBaseMs * 2 ** this.attempts++);
    setTimeout(then, Math.random() * cap); // full jitter
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.call?.cancel();
  }
}

export class SimFleet {
  readonly stats: FleetStats = { registered: 0, beatsAcked: 0, reconnects: 0, reconnectTimes: [], errors: new Map() };
  readonly agents: SimAgent[] = [];
  readonly backoffCapMs: number;
  readonly backoffBaseMs: number;
  private readonly clients: RawClient[] = [];

  constructor(options: FleetOptions) {
    this.backoffCapMs = options.backoffCapMs ?? 1000;
    this.backoffBaseMs = options.backoffBaseMs ?? 100;
    const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentRegistry), "AgentRegistry");
    for (let i = 0; i < (options.connections ?? 4); i++) {
      // Separate subchannel pools: each client its own connection.
      this.clients.push(
        new Client(options.address, grpc.credentials.createInsecure(), {
          "grpc.use_local_subchannel_pool": 1,
          "grpc.initial_reconnect_backoff_ms": 100,
          "grpc.max_reconnect_backoff_ms": 500,
        }) as unknown as RawClient,
      );
    }
    for (let i = 0; i < options.size; i++) {
      this.agents.push(new SimAgent(this.clients[i % this.clients.length] as RawClient, `sim-${String(i).padStart(5, "0")}`, this));
    }
  }

  start(): void {
    for (const agent of this.agents) agent.start();
  }

  count(code: string): void {
    this.stats.errors.set(code, (this.stats.errors.get(code) ?? 0) + 1);
  }

  stop(): void {
    for (const agent of this.agents) agent.stop();
    for (const client of this.clients) client.close();
  }
}
