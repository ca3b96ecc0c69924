// The library surface: what a program needs to talk to the registry or embed it. Everything else under
// src/ is internal.

import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AgentRegistry } from "../gen/registry/v1/registry_pb.js";

export * from "../gen/registry/v1/registry_pb.js";
export { grpcServiceDefinition } from "./grpc-service-definition.js";
export { type ServerConfig, loadServerConfig } from "./config/index.js";
export { type ServerHandle, startServer } from "./server/server.js";

/**
 * A Connect client for the registry's HTTP listener (e.g. http://127.0.0.1:50052), as internal services
 * use it: `await client.listAgents({ labelSelector: "gpu=a100" })`. `token` is sent as a bearer token.
 */
export function createRegistryClient(baseUrl: string, options: { token?: string } = {}): Client<typeof AgentRegistry> {
  const { token } = options;
  return createClient(
    AgentRegistry,
    createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      interceptors: token === undefined ? [] : [(next) => (request) => {
        request.header.set("authorization", `Bearer ${token}`);
        return next(request);
      }],
    }),
  );
}
