// AgentRegistry over Connect (JSON and binary), gRPC-Web and gRPC for the HTTP listener, via
// @connectrpc/connect-node and the shared handlers. Only moves messages and maps errors.

import { Code, ConnectError, type ConnectRouter, type HandlerContext, type ServiceImpl, createContextKey } from "@connectrpc/connect";
import { AgentRegistry, type HeartbeatRequest, type HeartbeatResponse } from "../../gen/registry/v1/registry_pb.js";
import { callerKey } from "./connect-auth.js";
import type { Log } from "../common/log.js";
import { RegistryError } from "../registry/registry-error.js";
import { disconnectCode } from "./client-disconnect.js";
import type { Disclosure } from "./disclosure.js";
import { toConnectError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import type { RegistryHandlers } from "./registry-handlers.js";
import { ResponseQueue } from "./response-queue.js";
import { watchEventToWire } from "./wire.js";

/** The caller's address, set per request by the HTTP listener. */
export const peerHostKey = createContextKey<string | undefined>(undefined, { description: "peer host" });

export function connectRoutes(
  handlers: RegistryHandlers,
  log: Log,
  metrics: ServerMetrics,
  disclosure: Disclosure,
): (router: ConnectRouter) => void {
  const unary = async <T>(method: string, context: HandlerContext, run: () => T | Promise<T>): Promise<T> => {
    const started = performance.now();
    let code: number = Code.Unknown;
    try {
      const response = await run();
      code = 0; // OK
      return response;
    } catch (error) {
      const connectError = toConnectError(error, log, disclosure.toCaller(context.values.get(callerKey)));
      code = connectError.code;
      throw connectError;
    } finally {
      metrics.rpc(method, "http", code, (performance.now() - started) / 1000);
    }
  };
  /** Runs a streaming handler, mapping its error and recording how it ended. */
  async function* streaming<T>(method: string, context: HandlerContext, run: () => AsyncIterable<T>): AsyncIterable<T> {
    const { signal } = context;
    let code = 0; // OK
    try {
      yield* run();
    } catch (error) {
      // connect-node throws a failed write into the handler: a client that hung up is no server error
      // (connect-adapter.ts logs it once, at debug).
      if (!(error instanceof RegistryError) && (signal.aborted || disconnectCode(error) !== undefined)) {
        code = Code.Canceled;
        throw new ConnectError("the client went away", Code.Canceled, undefined, undefined, error);
      }
      const connectError = toConnectError(error, log, disclosure.toCaller(context.values.get(callerKey)));
      code = connectError.code;
      throw connectError;
    } finally {
      metrics.rpc(method, "http", signal.aborted && code === 0 ? Code.Canceled : code);
    }
  }
  const service: ServiceImpl<typeof AgentRegistry> = {
    register: (request, context) => unary("Register", context, () => handlers.register(request, context.values.get(peerHostKey))),
    listAgents: (request, context) =>
      unary("ListAgents", context, () => handlers.listAgents(request, { binary: answersInBinary(context) })),
    getAgent: (request, context) => unary("GetAgent", context, () => handlers.getAgent(request)),
    deregister: (request, context) => unary("Deregister", context, () => handlers.deregister(request, context.values.get(callerKey))),
    heartbeat: (requests, context) => streaming("Heartbeat", context, () => heartbeat(requests, handlers)),
    watchAgents: (request, context) =>
      streaming("WatchAgents", context, async function* () {
        const { watcher, slot } = handlers.watchAgents(request);
        // The client may leave while no event is due: stop waiting then, not at the next event.
        const leave = () => watcher.close();
        context.signal.addEventListener("abort", leave, { once: true });
        try {
          for await (const event of watcher) yield watchEventToWire(event);
        } finally {
          context.signal.removeEventListener("abort", leave);
          watcher.close();
          slot.release();
        }
      }),
  };
  return (router) => router.service(AgentRegistry, service);
}

/**
 * Whether the answer goes out in protobuf binary: a request in binary (Connect, gRPC and gRPC-Web alike) is
 * answered in it. A GET carries no content type; it is answered through the plain message, whatever its
 * encoding.
 */
function answersInBinary(context: HandlerContext): boolean {
  const contentType = context.requestHeader.get("content-type");
  return contentType !== null && !/json/i.test(contentType);
}

/**
 * Beats are read as they come and handed to the call, which sends the acks in order; this side only turns
 * them into the response stream. A stream the server ends (or a bad beat) fails the response stream.
 */
async function* heartbeat(
  requests: AsyncIterable<HeartbeatRequest>,
  handlers: RegistryHandlers,
): AsyncIterable<HeartbeatResponse> {
  const acks = new ResponseQueue<HeartbeatResponse>();
  const call = handlers.heartbeat({ ack: (response) => acks.push(response), end: (reason) => acks.fail(reason) });
  const reading = (async () => {
    for await (const request of requests) call.receive(request);
    // The client is done sending: answer every beat it sent (a last `leaving` among them), then end OK.
    await call.drained();
    acks.finish();
  })();
  reading.catch((error: unknown) => acks.fail(error));
  try {
    yield* acks;
  } finally {
    call.close();
  }
}
