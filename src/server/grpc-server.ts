// The gRPC listener: a @grpc/grpc-js server (the Heartbeat hot path) serving AgentRegistry through the
// shared handlers. It only moves messages and maps errors; it sends keepalive pings so a half-open
// connection is noticed and its stream closed.

import * as grpc from "@grpc/grpc-js";
import type { Message } from "@bufbuild/protobuf";
import {
  AgentRegistry,
  type DeregisterRequest,
  type GetAgentRequest,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type ListAgentsRequest,
  type RegisterRequest,
  type WatchAgentsRequest,
  type WatchAgentsResponse,
} from "../../gen/registry/v1/registry_pb.js";
import { MalformedRequest, grpcServiceDefinition } from "../grpc-service-definition.js";
import { RegistryError } from "../registry/registry-error.js";
import { type Authorizer, type CallCredentials, type Caller, type RegistryMethod, clientCertificateOf } from "./authorizer.js";
import type { Log } from "../common/log.js";
import type { Disclosure } from "./disclosure.js";
import { retryHeaders, toStatus } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import type { RegistryHandlers } from "./registry-handlers.js";
import { hostOfPeer, watchEventToWire } from "./wire.js";

export interface GrpcServerOptions {
  /** How long a connection may be idle before the server pings it. */
  readonly keepaliveTimeMs: number;
  /** How long to wait for the ping's answer before closing the connection. */
  readonly keepaliveTimeoutMs: number;
  /** Checks every AgentRegistry call before its handler runs. */
  readonly authorizer: Authorizer;
  /** Larger request messages are refused with RESOURCE_EXHAUSTED (by grpc-js, before they are buffered). */
  readonly maxMessageBytes: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: clients queue streams beyond it; the server refuses extras. */
  readonly maxStreamsPerConnection: number;
  /** Which callers' errors may name the server's internals (the store's path). */
  readonly disclosure: Disclosure;
}

/** What the auth check reads of any kind of call. */
type SurfaceCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, "metadata" | "getAuthContext">;

/** Records how an RPC ended; `code` 0 is OK. */
type Done = (code: grpc.status) => void;

export function createGrpcServer(
  handlers: RegistryHandlers,
  log: Log,
  metrics: ServerMetrics,
  options: GrpcServerOptions,
): grpc.Server {
  const server = new grpc.Server({
    "grpc.keepalive_time_ms": options.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs,
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_concurrent_streams": options.maxStreamsPerConnection,
  });
  const fail = (error: unknown, caller?: Caller): Partial<grpc.StatusObject> => {
    const status = toStatus(error, log, options.disclosure.toCaller(caller));
    const hints = retryHeaders(status);
    if (hints === undefined) return { code: status.code as number as grpc.status, details: status.message };
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(hints)) metadata.set(key, value);
    return { code: status.code as number as grpc.status, details: status.message, metadata };
  };
  // The one auth check (authorizer.ts), before a handler sees the request and so before any lookup.
  const authorize = (method: RegistryMethod, call: SurfaceCall): Caller =>
    options.authorizer.authorize(method, grpcCredentials(call));
  /** Authorizes a stream, or ends it with the refusal; the caller when it may go on. */
  const admitted = (
    method: RegistryMethod,
    call: SurfaceCall & { emit(event: "error", status: Partial<grpc.StatusObject>): boolean },
    done: Done,
  ): Caller | undefined => {
    try {
      return authorize(method, call);
    } catch (error) {
      const status = fail(error);
      done(status.code ?? grpc.status.UNKNOWN);
      call.emit("error", status);
      return undefined;
    }
  };
  const unary =
    <Req extends Message, Res extends Message>(
      method: RegistryMethod,
      handle: (request: Req, call: grpc.ServerUnaryCall<Req, Res>, caller: Caller) => Res | Promise<Res>,
    ) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
      const started = performance.now();
      const done = (code: grpc.status): void => metrics.rpc(method, "grpc", code as number, (performance.now() - started) / 1000);
      let caller: Caller | undefined;
      // Promise.resolve().then turns a synchronous throw into a rejection, so both reach the callback.
      Promise.resolve()
        .then(() => {
          caller = authorize(method, call);
          return handle(wellFormed(call.request), call, caller);
        })
        .then(
          (response) => {
            done(grpc.status.OK);
            callback(null, response);
          },
          (error: unknown) => {
            const status = fail(error, caller);
            done(status.code ?? grpc.status.UNKNOWN);
            callback(status);
          },
        );
    };
  const stream = (method: string): Done => {
    let recorded = false;
    return (code) => {
      if (recorded) return;
      recorded = true;
      metrics.rpc(method, "grpc", code as number);
    };
  };

  server.addService(grpcServiceDefinition(AgentRegistry, { malformedRequests: "value" }), {
    Register: unary("Register", (request: RegisterRequest, call) => handlers.register(request, hostOfPeer(call.getPeer()))),
    ListAgents: unary("ListAgents", (request: ListAgentsRequest) => handlers.listAgents(request, { binary: true })),
    GetAgent: unary("GetAgent", (request: GetAgentRequest) => handlers.getAgent(request)),
    Deregister: unary("Deregister", (request: DeregisterRequest, _call, caller) => handlers.deregister(request, caller)),
    Heartbeat: (call: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) => {
      const done = stream("Heartbeat");
      const caller = admitted("Heartbeat", call, done);
      if (caller !== undefined) serveHeartbeat(call, handlers, (error) => fail(error, caller), done);
    },
    WatchAgents: (call: grpc.ServerWritableStream<WatchAgentsRequest, WatchAgentsResponse>) => {
      const done = stream("WatchAgents");
      const caller = admitted("WatchAgents", call, done);
      if (caller !== undefined) void serveWatch(call, handlers, (error) => fail(error, caller), done);
    },
  });
  return server;
}

/** The request, or INVALID_ARGUMENT naming its type when its bytes were not valid protobuf. */
function wellFormed<T>(request: T | MalformedRequest): T {
  if (request instanceof MalformedRequest) throw new RegistryError("invalidArgument", request.message);
  return request;
}

function grpcCredentials(call: SurfaceCall): CallCredentials {
  const [authorization] = call.metadata.get("authorization");
  // grpc-js reports a peer certificate only once the handshake verified it against the client CA.
  const peer = call.getAuthContext().sslPeerCertificate;
  return {
    authorization: authorization === undefined ? undefined : authorization.toString(),
    clientCertificate: clientCertificateOf(peer, peer !== undefined),
  };
}

async function serveWatch(
  call: grpc.ServerWritableStream<WatchAgentsRequest, WatchAgentsResponse>,
  handlers: RegistryHandlers,
  fail: (error: unknown) => Partial<grpc.StatusObject>,
  done: Done,
): Promise<void> {
  const end = (error: unknown): void => {
    const status = fail(error);
    done(status.code ?? grpc.status.UNKNOWN);
    call.emit("error", status);
  };
  let watch;
  try {
    watch = handlers.watchAgents(wellFormed(call.request));
  } catch (error) {
    end(error);
    return;
  }
  const { watcher, slot } = watch;
  let gone = false;
  const leave = (): void => {
    if (!gone) done(grpc.status.CANCELLED);
    gone = true;
    watcher.close();
  };
  call.on("cancelled", leave);
  call.on("close", () => {
    leave();
    slot.release();
  });
  try {
    for await (const event of watcher) {
      if (gone) return;
      // Respect HTTP/2 flow control: while the client does not read, events wait in the watcher's bounded
      // queue, which cuts the watcher off when it overflows.
      if (!call.write(watchEventToWire(event))) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            call.off("drain", done);
            call.off("close", done);
            resolve();
          };
          call.on("drain", done);
          call.on("close", done);
        });
      }
    }
    if (!gone) {
      done(grpc.status.OK);
      call.end();
    }
  } catch (error) {
    if (!gone) end(error);
  }
}

function serveHeartbeat(
  call: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>,
  handlers: RegistryHandlers,
  fail: (error: unknown) => Partial<grpc.StatusObject>,
  done: Done,
): void {
  let ended = false;
  const heartbeat = handlers.heartbeat({
    ack: (response) => {
      if (!ended) call.write(response);
    },
    end: (reason) => {
      if (ended) return;
      ended = true;
      const status = fail(reason);
      done(status.code ?? grpc.status.UNKNOWN);
      call.emit("error", status);
    },
  });
  call.on("data", (request: HeartbeatRequest | MalformedRequest) => {
    if (request instanceof MalformedRequest) heartbeat.refuse(new RegistryError("invalidArgument", request.message));
    else heartbeat.receive(request);
  });
  // The client is done sending: answer every beat it sent (a last `leaving` among them), then end OK.
  call.on("end", () => {
    void heartbeat.drained().then(() => {
      if (ended) return;
      ended = true;
      heartbeat.close();
      done(grpc.status.OK);
      call.end();
    });
  });
  call.on("cancelled", () => {
    if (!ended) done(grpc.status.CANCELLED);
    ended = true;
    heartbeat.close();
  });
  call.on("error", () => heartbeat.close());
}
