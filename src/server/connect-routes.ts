// AgentRegistry over Connect (JSON and binary), gRPC-Web and gRPC for the HTTP listener, via
// @connectrpc/connect-node and the shared handlers. Only moves messages and maps errors.

import { type ConnectRouter, type ServiceImpl, createContextKey } from "@connectrpc/connect";
import { AgentRegistry, type HeartbeatRequest, type HeartbeatResponse } from "../../gen/registry/v1/registry_pb.js";
import { type ErrorLog, toConnectError } from "./errors.js";
import type { RegistryHandlers } from "./registry-handlers.js";
import { watchEventToWire } from "./wire.js";

/** The caller's address, set per request by the HTTP listener. */
export const peerHostKey = createContextKey<string | undefined>(undefined, { description: "peer host" });

export function connectRoutes(handlers: RegistryHandlers, log: ErrorLog): (router: ConnectRouter) => void {
  const mapped = async <T>(run: () => T | Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw toConnectError(error, log);
    }
  };
  const service: ServiceImpl<typeof AgentRegistry> = {
    register: (request, context) => mapped(() => handlers.register(request, context.values.get(peerHostKey))),
    listAgents: (request) => mapped(() => handlers.listAgents(request)),
    getAgent: (request) => mapped(() => handlers.getAgent(request)),
    deregister: (request) => mapped(() => handlers.deregister(request)),
    heartbeat: (requests) => heartbeat(requests, handlers, log),
    async *watchAgents(request, context) {
      let watcher;
      try {
        watcher = handlers.watchAgents(request);
      } catch (error) {
        throw toConnectError(error, log);
      }
      // The client may leave while no event is due: stop waiting then, not at the next event.
      const leave = () => watcher.close();
      context.signal.addEventListener("abort", leave, { once: true });
      try {
        for await (const event of watcher) yield watchEventToWire(event);
      } catch (error) {
        throw toConnectError(error, log);
      } finally {
        context.signal.removeEventListener("abort", leave);
        watcher.close();
      }
    },
  };
  return (router) => router.service(AgentRegistry, service);
}

async function* heartbeat(
  requests: AsyncIterable<HeartbeatRequest>,
  handlers: RegistryHandlers,
  log: ErrorLog,
): AsyncIterable<HeartbeatResponse> {
  // The registry may end the stream while we wait for the client's next beat: race every wait against it.
  let endStream: (reason: unknown) => void = () => {};
  const ended = new Promise<never>((_, reject) => (endStream = reject));
  const call = handlers.heartbeat((reason) => endStream(reason));
  const incoming = requests[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await Promise.race([incoming.next(), ended]);
      if (next.done === true) return;
      yield await Promise.race([call.handle(next.value), ended]);
    }
  } catch (error) {
    throw toConnectError(error, log);
  } finally {
    call.close();
  }
}
