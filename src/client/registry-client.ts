// A Connect client of the registry's HTTP listener over HTTP/1.1, as internal services and the CLI use it:
// the bearer token on every call, and TLS from PEM contents for an https:// URL.

import { type Client, type Interceptor, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AgentRegistry } from "../../gen/registry/v1/registry_pb.js";
import type { TlsFileContents } from "../common/client-tls-files.js";

export interface RegistryClientOptions {
  /** Sent as `authorization: Bearer <token>` on every call. */
  readonly token?: string | undefined;
  /** CA and client certificate for an https:// registry (Node's own CAs when no CA is given). */
  readonly tls?: TlsFileContents | undefined;
}

/** e.g. `createRegistryClient("http://127.0.0.1:50052")`, then `await client.listAgents({ labelSelector: "gpu=a100" })`. */
export function createRegistryClient(baseUrl: string, options: RegistryClientOptions = {}): Client<typeof AgentRegistry> {
  const { token, tls } = options;
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    interceptors: token === undefined ? [] : [bearer(token)],
    ...(tls === undefined ? {} : { nodeOptions: tls }),
  });
  return createClient(AgentRegistry, transport);
}

function bearer(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}
