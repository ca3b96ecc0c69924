// The two ways callers reach the registry, behind one interface so the same tests run against both:
// @grpc/grpc-js on the gRPC port (how node daemons talk) and a Connect client on the HTTP port (how
// internal services talk). Errors are normalised to { code, message }. Options add a bearer token and
// TLS (a CA to trust the server by, a client certificate for mutual TLS).

import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  AgentRegistry,
  type DeregisterResponse,
  type GetAgentResponse,
  HeartbeatRequestSchema,
  type HeartbeatRequest,
  type HeartbeatResponse,
  ListAgentsRequestSchema,
  type ListAgentsResponse,
  RegisterRequestSchema,
  type RegisterResponse,
  DeregisterRequestSchema,
  GetAgentRequestSchema,
  WatchAgentsRequestSchema,
  type WatchAgentsRequest,
  type WatchAgentsResponse,
} from "../../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../../src/grpc-service-definition.js";

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The RpcError a call failed with; fails the test if the call succeeded or failed otherwise. */
export async function rejection(promise: Promise<unknown>): Promise<RpcError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof RpcError)) throw new Error(`expected an RPC error, got ${String(error)}`);
  return error;
}

export interface BeatStream {
  send(request: MessageInitShape<typeof HeartbeatRequestSchema>): void;
  /** The next ack; rejects with an RpcError once the stream has ended with one. */
  recv(): Promise<HeartbeatResponse>;
  /** Half-closes the stream (the client is done sending). */
  end(): void;
  /** Cuts the stream without a goodbye, as a broken connection would. */
  cancel(): void;
  /** The final status: code 0 when it ended cleanly. */
  readonly closed: Promise<RpcError>;
}

export interface WatchStream {
  /** The next event; rejects with an RpcError (code 0 when the stream ended cleanly). */
  recv(): Promise<WatchAgentsResponse>;
  /** Stops reading (gRPC: pauses the stream), so the server sees a slow watcher. */
  pause(): void;
  resume(): void;
  cancel(): void;
}

export interface ClientOptions {
  /** Sent as `authorization: Bearer <token>` on every call. */
  readonly token?: string;
  /** TLS; `ca` undefined trusts Node's own CAs. The client certificate and key are for mutual TLS. */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

export interface RegistryClient {
  readonly transport: string;
  register(request: MessageInitShape<typeof RegisterRequestSchema>): Promise<RegisterResponse>;
  listAgents(request?: MessageInitShape<typeof ListAgentsRequestSchema>): Promise<ListAgentsResponse>;
  getAgent(agentId: string): Promise<GetAgentResponse>;
  deregister(agentId: string, agentSecret?: string): Promise<DeregisterResponse>;
  heartbeat(): BeatStream;
  watch(request?: MessageInitShape<typeof WatchAgentsRequestSchema>): WatchStream;
  close(): void;
}

/** A queue of values or a terminal error, read one at a time. */
class Inbox<T> {
  private readonly values: T[] = [];
  private readonly waiters: Array<{ resolve(value: T): void; reject(error: unknown): void }> = [];
  private failure: RpcError | undefined;

  push(value: T): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter.resolve(value);
    else this.values.push(value);
  }

  fail(error: RpcError): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  next(): Promise<T> {
    if (this.values.length > 0) return Promise.resolve(this.values.shift() as T);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

function fromGrpc(error: grpc.ServiceError | grpc.StatusObject): RpcError {
  return new RpcError(error.code, "details" in error ? error.details : "");
}

export function grpcClient(address: string, options: ClientOptions = {}): RegistryClient {
  const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentRegistry), "AgentRegistry");
  const credentials =
    options.tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(options.tls.ca ?? null, options.tls.key ?? null, options.tls.cert ?? null);
  // A private subchannel pool: each client its own connection, as daemons on separate hosts have.
  const client = new Client(address, credentials, { "grpc.use_local_subchannel_pool": 1 });
  const metadata = (): grpc.Metadata => {
    const result = new grpc.Metadata();
    if (options.token !== undefined) result.set("authorization", `Bearer ${options.token}`);
    return result;
  };
  const unary = <Res>(method: string, request: unknown): Promise<Res> =>
    new Promise((resolve, reject) => {
      const call = (client as unknown as Record<string, (...args: unknown[]) => void>)[method] as (
        request: unknown,
        metadata: grpc.Metadata,
        callback: (error: grpc.ServiceError | null, response: Res) => void,
      ) => void;
      call.call(client, request, metadata(), (error, response) => (error === null ? resolve(response) : reject(fromGrpc(error))));
    });
  return {
    transport: "grpc-js",
    register: (request) => unary("Register", create(RegisterRequestSchema, request)),
    listAgents: (request = {}) => unary("ListAgents", create(ListAgentsRequestSchema, request)),
    getAgent: (agentId) => unary("GetAgent", create(GetAgentRequestSchema, { agentId })),
    deregister: (agentId, agentSecret = "") => unary("Deregister", create(DeregisterRequestSchema, { agentId, agentSecret })),
    heartbeat() {
      const call = (
        client as unknown as { Heartbeat(metadata: grpc.Metadata): grpc.ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> }
      ).Heartbeat(metadata());
      const inbox = new Inbox<HeartbeatResponse>();
      const closed = new Promise<RpcError>((resolve) =>
        call.on("status", (status: grpc.StatusObject) => {
          const result = fromGrpc(status);
          inbox.fail(status.code === grpc.status.OK ? new RpcError(0, "stream ended") : result);
          resolve(result);
        }),
      );
      call.on("data", (response: HeartbeatResponse) => inbox.push(response));
      call.on("error", () => {}); // reported through "status"
      return {
        send: (request) => call.write(create(HeartbeatRequestSchema, request)),
        recv: () => inbox.next(),
        end: () => call.end(),
        cancel: () => call.cancel(),
        closed,
      };
    },
    watch(request = {}) {
      const call = (
        client as unknown as {
          WatchAgents(request: WatchAgentsRequest, metadata: grpc.Metadata): grpc.ClientReadableStream<WatchAgentsResponse>;
        }
      ).WatchAgents(create(WatchAgentsRequestSchema, request), metadata());
      const inbox = new Inbox<WatchAgentsResponse>();
      call.on("data", (response: WatchAgentsResponse) => inbox.push(response));
      call.on("status", (status: grpc.StatusObject) => inbox.fail(fromGrpc(status)));
      call.on("error", () => {}); // reported through "status"
      return {
        recv: () => inbox.next(),
        pause: () => call.pause(),
        resume: () => call.resume(),
        cancel: () => call.cancel(),
      };
    },
    close: () => client.close(),
  };
}

/** `httpUrl` is the server's HTTP listener; HTTP/2 (h2c, or h2 over TLS) so that the bidi Heartbeat works too. */
export function connectClient(httpUrl: string, options: ClientOptions = {}): RegistryClient {
  const sessions = new Http2SessionManager(httpUrl, undefined, options.tls === undefined ? undefined : { ...options.tls });
  const bearer: Interceptor = (next) => (request) => {
    if (options.token !== undefined) request.header.set("authorization", `Bearer ${options.token}`);
    return next(request);
  };
  const client = createClient(
    AgentRegistry,
    createConnectTransport({ baseUrl: httpUrl, httpVersion: "2", sessionManager: sessions, interceptors: [bearer] }),
  );
  const mapped = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      const connectError = ConnectError.from(error);
      throw new RpcError(connectError.code, connectError.rawMessage);
    }
  };
  return {
    transport: "connect",
    register: (request) => mapped(() => client.register(request)),
    listAgents: (request = {}) => mapped(() => client.listAgents(request)),
    getAgent: (agentId) => mapped(() => client.getAgent({ agentId })),
    deregister: (agentId, agentSecret = "") => mapped(() => client.deregister({ agentId, agentSecret })),
    heartbeat() {
      const outbox = new Inbox<HeartbeatRequest | undefined>();
      const abort = new AbortController();
      async function* requests(): AsyncGenerator<HeartbeatRequest> {
        for (;;) {
          const next = await outbox.next();
          if (next === undefined) return;
          yield next;
        }
      }
      const inbox = new Inbox<HeartbeatResponse>();
      const closed = (async () => {
        try {
          for await (const response of client.heartbeat(requests(), { signal: abort.signal })) inbox.push(response);
          inbox.fail(new RpcError(0, "stream ended"));
          return new RpcError(0, "");
        } catch (error) {
          const connectError = ConnectError.from(error);
          const result = new RpcError(connectError.code, connectError.rawMessage);
          inbox.fail(result);
          return result;
        }
      })();
      return {
        send: (request) => outbox.push(create(HeartbeatRequestSchema, request)),
        recv: () => inbox.next(),
        end: () => outbox.push(undefined),
        cancel: () => abort.abort(),
        closed,
      };
    },
    watch(request = {}) {
      const abort = new AbortController();
      // Read on demand only: an unread stream is a slow watcher, as the server sees it.
      const events = client.watchAgents(request, { signal: abort.signal })[Symbol.asyncIterator]();
      return {
        recv: async () => {
          const next = await mapped(() => events.next());
          if (next.done === true) throw new RpcError(0, "stream ended");
          return next.value;
        },
        pause: () => {},
        resume: () => {},
        cancel: () => abort.abort(),
      };
    },
    close: () => sessions.abort(),
  };
}
