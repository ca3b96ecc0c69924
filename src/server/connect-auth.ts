// The Connect side of the one auth check: an interceptor on the AgentRegistry routes that hands the
// request's credentials (the `authorization` header, the client certificate the HTTP listener saw) to the
// Authorizer before any handler runs, and passes the admitted Caller on in the context values. The probes
// (/healthz, /readyz, /metrics) are connect-node's fallback, not routes, so they never come here.

import { type Interceptor, createContextKey } from "@connectrpc/connect";
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { ANYONE, type Authorizer, type Caller, type ClientCertificate, clientCertificateOfSocket } from "./authorizer.js";
import type { Log } from "../common/log.js";
import { toConnectError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

/** The caller the Authorizer admitted; handlers read it (Deregister: an admin needs no agent secret). */
export const callerKey = createContextKey<Caller>(ANYONE, { description: "caller" });

/** The client certificate of the request's connection, set per request by the HTTP listener. */
export const clientCertificateKey = createContextKey<ClientCertificate | undefined>(undefined, {
  description: "client certificate",
});

export function authInterceptor(authorizer: Authorizer, log: Log, metrics: ServerMetrics): Interceptor {
  return (next) => async (request) => {
    let caller: Caller;
    try {
      caller = authorizer.authorize(request.method.name, {
        authorization: request.header.get("authorization") ?? undefined,
        clientCertificate: request.contextValues.get(clientCertificateKey),
      });
    } catch (error) {
      const refusal = toConnectError(error, log);
      metrics.rpc(request.method.name, "http", refusal.code);
      throw refusal;
    }
    request.contextValues.set(callerKey, caller);
    return next(request);
  };
}

/** The client certificate of the connection an HTTP/1.1 or HTTP/2 request came on. */
export function requestClientCertificate(request: http.IncomingMessage | http2.Http2ServerRequest): ClientCertificate | undefined {
  // An HTTP/2 request's `socket` is a proxy of its stream, not the TLS socket: ask the session for that.
  return clientCertificateOfSocket("stream" in request ? request.stream.session?.socket : request.socket);
}
