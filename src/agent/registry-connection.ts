// The node daemon's one connection to the registry: a @grpc/grpc-js channel to the gRPC port with keepalive
// pings (plaintext, or TLS with the daemon's CA and client certificate), offering Register and the Heartbeat
// stream, each call carrying the daemon's bearer token. Moves messages only; what to do when a call fails
// is node-agent.ts's business.

import * as grpc from "@grpc/grpc-js";
import { readClientTlsFiles } from "../common/client-tls-files.js";
import type { ClientTlsFiles } from "../config/index.js";
import { type MessageInitShape, create } from "@bufbuild/protobuf";
import {
  AgentRegistry,
  type HeartbeatRequest,
  HeartbeatRequestSchema,
  type HeartbeatResponse,
  type RegisterRequest,
  RegisterRequestSchema,
  type RegisterResponse,
} from "../../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../grpc-service-definition.js";

/**
 * Client keepalive. The server (grpc-js, src/server/server.ts) pings idle connections itself every heartbeat
 * interval (1-30 s) and does not police client pings, so any value works against it; 10 s is the smallest
 * interval grpc-go and grpc-core servers accept by default without answering GOAWAY "too_many_pings", and
 * with a 5 s timeout a half-open connection is noticed within 15 s, well before AGENT_TIMEOUT (60 s).
 * Pings only while a call is open (no keepalive_permit_without_calls): the daemon always has its stream.
 */
export const KEEPALIVE_OPTIONS = {
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
} as const;

export class RpcFailure extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    /** When the server said to retry, in ms from now (its `grpc-retry-pushback-ms`); undefined if it did not. */
    readonly retryAfterMs?: number | undefined,
  ) {
    super(`${statusName(code)}: ${details}`);
    this.name = "RpcFailure";
  }
}

/** The final status of a Heartbeat stream. */
export interface StreamEnd {
  readonly code: grpc.status;
  readonly details: string;
  /** When the server said to reconnect, in ms from now (its `grpc-retry-pushback-ms`); undefined if it did not. */
  readonly retryAfterMs?: number | undefined;
}

/** The trailer a server names its retry hint in (gRPC's retry design, A6), in whole milliseconds. */
export const RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms";

/**
 * The retry hint a status carries, in ms; undefined when there is none or it is not a non-negative integer.
 * (A6 reads a malformed hint as "do not retry"; a daemon never stops retrying, so it falls back to its backoff.)
 */
export function retryPushbackMs(metadata: grpc.Metadata | undefined): number | undefined {
  const value = metadata?.get(RETRY_PUSHBACK_KEY)[0];
  if (typeof value !== "string" || !/^\d+$/.test(value.trim())) return undefined;
  const ms = Number(value.trim());
  return Number.isSafeInteger(ms) ? ms : undefined;
}

export interface HeartbeatCall {
  send(request: MessageInitShape<typeof HeartbeatRequestSchema>): void;
  /** Called with each ack, in order. */
  onAck(listener: (ack: HeartbeatResponse) => void): void;
  /** Half-closes: the daemon is done sending. */
  end(): void;
  /** Cuts the stream (it then ends with CANCELLED). */
  cancel(): void;
  readonly ended: Promise<StreamEnd>;
}

export interface RegistryConnection {
  register(request: MessageInitShape<typeof RegisterRequestSchema>, deadlineMs: number): Promise<RegisterResponse>;
  heartbeat(): HeartbeatCall;
  /** Cancels the calls still open and closes the channel. */
  close(): void;
}

export type ConnectRegistry = (address: string) => RegistryConnection;

export interface ConnectionOptions {
  /** Channel credentials (TLS); default plaintext. */
  readonly credentials?: grpc.ChannelCredentials | undefined;
  /** Sent as `authorization: Bearer <token>` with every call. */
  readonly token?: string | undefined;
}

/**
 * TLS channel credentials from the daemon's files (`tls` undefined: plaintext). Read once at start; a file
 * that cannot be read is an Error naming it.
 */
export async function channelCredentials(tls: ClientTlsFiles | undefined): Promise<grpc.ChannelCredentials> {
  if (tls === undefined) return grpc.credentials.createInsecure();
  const { ca, cert, key } = await readClientTlsFiles(tls);
  return grpc.credentials.createSsl(ca ?? null, key ?? null, cert ?? null);
}

const RegistryClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentRegistry), "AgentRegistry");

interface RegistryStub {
  Register(
    request: RegisterRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: RegisterResponse) => void,
  ): grpc.ClientUnaryCall;
  Heartbeat(metadata: grpc.Metadata): grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse>;
}

/**
 * Opens a channel to `address` (host:port). The daemon opens a new one for each connection attempt, so its own
 * full-jitter backoff decides when to reconnect, not grpc-js's channel backoff (which grows to 120 s).
 */
export function connectRegistry(address: string, options: ConnectionOptions = {}): RegistryConnection {
  // Per-call metadata rather than call credentials: grpc-js refuses call credentials on a plaintext channel,
  // and a token over loopback plaintext is a legitimate set-up.
  const metadata = (): grpc.Metadata => {
    const result = new grpc.Metadata();
    if (options.token !== undefined) result.set("authorization", `Bearer ${options.token}`);
    return result;
  };
  const client = new RegistryClient(address, options.credentials ?? grpc.credentials.createInsecure(), {
    ...KEEPALIVE_OPTIONS,
    // Its own connection even when one process runs several daemons (tests), as separate hosts would have.
    "grpc.use_local_subchannel_pool": 1,
  });
  const stub = client as unknown as RegistryStub;
  const open = new Set<{ cancel(): void }>();
  let closed = false;
  const track = <T extends { cancel(): void }>(call: T): T => {
    open.add(call);
    return call;
  };
  return {
    register: (request, deadlineMs) =>
      new Promise((resolve, reject) => {
        if (closed) return reject(new RpcFailure(grpc.status.CANCELLED, "the connection was closed"));
        const call = track(
          stub.Register(create(RegisterRequestSchema, request), metadata(), { deadline: Date.now() + deadlineMs }, (error, response) => {
            open.delete(call);
            if (error !== null) reject(new RpcFailure(error.code, error.details, retryPushbackMs(error.metadata)));
            else if (response === undefined) reject(new RpcFailure(grpc.status.INTERNAL, "Register answered nothing"));
            else resolve(response);
          }),
        );
      }),
    heartbeat() {
      if (closed) throw new RpcFailure(grpc.status.CANCELLED, "the connection was closed");
      const call = stub.Heartbeat(metadata());
      track(call);
      let ended = false;
      const endedPromise = new Promise<StreamEnd>((resolve) =>
        call.on("status", (status: grpc.StatusObject) => {
          ended = true;
          open.delete(call);
          resolve({ code: status.code, details: status.details, retryAfterMs: retryPushbackMs(status.metadata) });
        }),
      );
      // grpc-js reports every failure twice: as "error" (which would throw if unheard) and as "status", which
      // carries the code and is handled above.
      call.on("error", () => undefined);
      return {
        send(request) {
          if (!ended) call.write(create(HeartbeatRequestSchema, request));
        },
        onAck: (listener) => call.on("data", listener),
        end: () => call.end(),
        cancel: () => call.cancel(),
        ended: endedPromise,
      };
    },
    close() {
      closed = true;
      for (const call of open) call.cancel();
      open.clear();
      client.close();
    },
  };
}

export function statusName(code: grpc.status): string {
  return grpc.status[code] ?? `status ${code}`;
}

/** A protobuf Duration in whole ms; undefined when absent or not positive. */
export function durationMs(duration: { readonly seconds: bigint; readonly nanos: number } | undefined): number | undefined {
  if (duration === undefined) return undefined;
  const ms = Number(duration.seconds) * 1000 + Math.round(duration.nanos / 1e6);
  return ms > 0 ? ms : undefined;
}
