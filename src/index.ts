// The library surface: what a program needs to talk to the registry or embed it. Everything else under
// src/ is internal.

export * from "../gen/registry/v1/registry_pb.js";
export { type RegistryClientOptions, createRegistryClient } from "./client/registry-client.js";
export { grpcServiceDefinition } from "./grpc-service-definition.js";
export { type ServerConfig, loadServerConfig } from "./config/index.js";
export { type ServerHandle, startServer } from "./server/server.js";
