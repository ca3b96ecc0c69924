// The etcd client: grpc-js on etcd's own v3 protos (proto/etcd, generated into gen/etcd by buf), not the
// `etcd3` package. grpc-js is the HTTP/2 stack the server already runs and tunes; the generated types are
// the same protobuf-es code as the rest of gen/; LeaseKeepAlive is one bidi stream that takes any lease id,
// so one stream per replica serves all its agents; and no second dependency tree (etcd3 brings its own
// grpc-js, proto-loader and cockatiel). Only what the store uses: Range, Txn, Watch, Lease Grant/Revoke/KeepAlive (and Status).
// Every unary call has a deadline; a failure is an EtcdUnreachable naming etcd and its endpoints.

import * as grpc from "@grpc/grpc-js";
import { type DescMessage, type MessageInitShape, type MessageShape, create } from "@bufbuild/protobuf";
import {
  KV,
  Lease,
  Maintenance,
  type StatusResponse,
  StatusRequestSchema,
  type LeaseGrantResponse,
  LeaseGrantRequestSchema,
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  LeaseRevokeRequestSchema,
  type RangeResponse,
  RangeRequestSchema,
  type TxnResponse,
  TxnRequestSchema,
  Watch,
  type WatchRequest,
  type WatchResponse,
} from "../../gen/etcd/etcdserverpb/rpc_pb.js";
import { grpcServiceDefinition } from "../grpc-service-definition.js";

const KvClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(KV), "KV");
const WatchClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(Watch), "Watch");
const LeaseClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(Lease), "Lease");
const MaintenanceClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(Maintenance), "Maintenance");

/** How long one unary call to etcd may take before the store calls etcd unreachable. */
const CALL_DEADLINE_MS = 3000;

/** etcd did not answer (or refused): the message names etcd, the endpoints and the gRPC status. */
export class EtcdUnreachable extends Error {
  constructor(
    readonly endpoints: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`etcd at ${endpoints} did not answer: ${detail}; check that the etcd cluster is up and has a leader`, options);
    this.name = "EtcdUnreachable";
  }
}

/** `http://h1:2379,http://h2:2379` as one grpc-js target: pick_first over the addresses, moving on when one fails. */
export function grpcTarget(endpoints: readonly string[]): string {
  const hosts = endpoints.map((endpoint) => new URL(endpoint).host);
  if (hosts.length === 1) return hosts[0] ?? "";
  if (hosts.every((host) => /^\d+\.\d+\.\d+\.\d+:\d+$/.test(host))) return `ipv4:${hosts.join(",")}`;
  if (hosts.every((host) => host.startsWith("["))) return `ipv6:${hosts.join(",")}`;
  // Names: grpc-js resolves one name per target, so a list of names goes through the first only.
  return hosts[0] ?? "";
}

export type Bidi<Req, Res> = grpc.ClientDuplexStream<Req, Res>;

// Keepalive pings find a dead member within seconds instead of TCP's minutes.
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 5000,
  "grpc.keepalive_timeout_ms": 3000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
};

/** The clients of unary calls, on one channel to one ordering of the members. */
interface UnaryClients {
  readonly kv: grpc.Client;
  readonly lease: grpc.Client;
  readonly maintenance: grpc.Client;
}

export class EtcdClient {
  readonly endpoints: string;
  private readonly watcher: grpc.Client;
  private readonly lease: grpc.Client;
  /** The members in the order unary calls try them; turned by one when a member does not answer. */
  private order: string[];
  private unaryClients: UnaryClients;

  constructor(endpoints: readonly string[]) {
    this.endpoints = endpoints.join(",");
    this.order = [...endpoints];
    const target = grpcTarget(endpoints);
    const credentials = grpc.credentials.createInsecure();
    // One channel, shared: grpc-js shares subchannels between clients of one target and options.
    this.watcher = new WatchClient(target, credentials, CHANNEL_OPTIONS);
    this.lease = new LeaseClient(target, credentials, CHANNEL_OPTIONS);
    this.unaryClients = unaryClientsFor(this.order);
  }

  /** The member's status: its id (header.member_id) and the leader's. */
  status(): Promise<StatusResponse> {
    return this.unary("maintenance", "Status", StatusRequestSchema, {});
  }

  range(request: MessageInitShape<typeof RangeRequestSchema>): Promise<RangeResponse> {
    return this.unary("kv", "Range", RangeRequestSchema, request);
  }

  txn(request: MessageInitShape<typeof TxnRequestSchema>): Promise<TxnResponse> {
    return this.unary("kv", "Txn", TxnRequestSchema, request);
  }

  leaseGrant(ttlSeconds: number): Promise<LeaseGrantResponse> {
    return this.unary("lease", "LeaseGrant", LeaseGrantRequestSchema, { TTL: BigInt(ttlSeconds) });
  }

  async leaseRevoke(id: bigint): Promise<void> {
    try {
      await this.unary("lease", "LeaseRevoke", LeaseRevokeRequestSchema, { ID: id });
    } catch (error) {
      // A lease that expired already is what a revoke wanted.
      if (error instanceof EtcdUnreachable && /not found/.test(error.detail)) return;
      throw error;
    }
  }

  watch(): Bidi<WatchRequest, WatchResponse> {
    return (this.watcher as unknown as { Watch(): Bidi<WatchRequest, WatchResponse> }).Watch();
  }

  leaseKeepAlive(): Bidi<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
    return (this.lease as unknown as { LeaseKeepAlive(): Bidi<LeaseKeepAliveRequest, LeaseKeepAliveResponse> }).LeaseKeepAlive();
  }

  close(): void {
    closeUnary(this.unaryClients);
    this.watcher.close();
    this.lease.close();
  }

  /**
   * A member took the whole deadline or refused: the next unary calls start at the next member. A member can
   * be up and still answer nothing (cut off from the others, or waiting for a leader), and pick_first stays
   * on any member whose connection is open; etcd's own client moves to another endpoint the same way.
   */
  private moveOn(failed: UnaryClients): void {
    if (this.order.length < 2 || failed !== this.unaryClients) return;
    this.order = [...this.order.slice(1), ...this.order.slice(0, 1)];
    this.unaryClients = unaryClientsFor(this.order);
    // Calls still under way on the old channel may finish; it is closed once they all must have.
    setTimeout(() => closeUnary(failed), CALL_DEADLINE_MS).unref();
  }

  private unary<S extends DescMessage, R>(service: keyof UnaryClients, method: string, schema: S, init: MessageInitShape<S>): Promise<R> {
    const request = create(schema, init) as MessageShape<S>;
    const clients = this.unaryClients;
    const client = clients[service];
    return new Promise<R>((resolve, reject) => {
      const call = (client as unknown as Record<string, (...args: unknown[]) => void>)[method];
      if (call === undefined) throw new Error(`etcd client has no ${method}`);
      call.call(client, request, new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error: grpc.ServiceError | null, response: R) => {
        if (error === null) {
          resolve(response);
          return;
        }
        if (error.code === grpc.status.DEADLINE_EXCEEDED || error.code === grpc.status.UNAVAILABLE) this.moveOn(clients);
        reject(new EtcdUnreachable(this.endpoints, `${method}: ${grpc.status[error.code] ?? error.code} ${error.details}`, { cause: error }));
      });
    });
  }
}

function unaryClientsFor(endpoints: readonly string[]): UnaryClients {
  const target = grpcTarget(endpoints);
  const credentials = grpc.credentials.createInsecure();
  return {
    kv: new KvClient(target, credentials, CHANNEL_OPTIONS),
    lease: new LeaseClient(target, credentials, CHANNEL_OPTIONS),
    maintenance: new MaintenanceClient(target, credentials, CHANNEL_OPTIONS),
  };
}

function closeUnary(clients: UnaryClients): void {
  clients.kv.close();
  clients.lease.close();
  clients.maintenance.close();
}
