// The HTTP listener's request handler for the Connect routes: connect-node's own connectNodeAdapter, made
// of the same public parts, except for a response that fails while it is written. connect-node prints
// those with console.error, stack and all (a Connect watcher that disconnects mid-write: "handler for rpc
// WatchAgents ... failed"); here they go to our log, at debug when the client went away, else as an error.

import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import {
  type ConnectNodeAdapterOptions,
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Log } from "../common/log.js";
import type { FastPath } from "./connect-json-list.js";
import { disconnectCode, disconnectFields } from "./client-disconnect.js";

type NodeHandler = ReturnType<typeof import("@connectrpc/connect-node").connectNodeAdapter>;
type NodeResponse = Parameters<NodeHandler>[1];

export interface ConnectAdapterOptions extends ConnectNodeAdapterOptions {
  readonly log: Log;
  /** Request paths some requests of which are answered without connect-node (connect-json-list.ts). */
  readonly fastPaths?: ReadonlyMap<string, FastPath>;
}

export function connectAdapter(options: ConnectAdapterOptions): NodeHandler {
  const { log } = options;
  const router = createConnectRouter({ ...options, acceptCompression: options.acceptCompression ?? [compressionGzip, compressionBrotli] });
  options.routes(router);
  const prefix = options.requestPathPrefix ?? "";
  const paths = new Map(router.handlers.map((handler) => [prefix + handler.requestPath, handler]));
  return (request, response) => {
    // Matched without the query string (GET requests carry the message there).
    const path = request.url?.split("?", 2)[0] ?? "";
    if (options.fastPaths?.get(path)?.(request, response) === true) return;
    const handler = paths.get(path);
    if (handler === undefined) {
      if (options.fallback !== undefined) options.fallback(request, response);
      else {
        response.writeHead(404);
        response.end();
      }
      return;
    }
    const universal = universalRequestFromNodeRequest(request, response, undefined, options.contextValues?.(request));
    const method = handler.method.name;
    handler(universal)
      .then((answer) => universalResponseToNodeResponse(answer, response))
      .catch((reason: unknown) => {
        if (clientLeft(reason, response)) {
          log.debug({ method, listener: "http", ...disconnectFields(reason) }, "client went away while its response was written");
        } else {
          log.error({ err: reason, method }, "could not write the response to a Connect call");
        }
      });
  };
}

/**
 * A failed write the client caused: its stream or socket is gone, or Node says it hung up (connect-node
 * itself reports those it recognises as ABORTED).
 */
function clientLeft(reason: unknown, response: NodeResponse): boolean {
  if (reason instanceof ConnectError && reason.code === Code.Aborted) return true;
  if (disconnectCode(reason) !== undefined) return true;
  const stream = "stream" in response ? response.stream : undefined;
  return response.destroyed || stream?.destroyed === true || response.socket?.destroyed === true;
}
