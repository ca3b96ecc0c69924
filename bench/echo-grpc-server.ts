// The floor: a bare @grpc/grpc-js server with the registry's own service definition
// (grpcServiceDefinition(AgentRegistry), protobuf-es serializers) that only acknowledges: Register answers
// at once, Heartbeat echoes each beat. Keepalive pings as the registry's gRPC listener sends them (its
// default HEARTBEAT_INTERVAL of 30 s gives a 30 s ping interval and a 20 s ping timeout).
// Usage: node echo-grpc-server.js [host:port] [keepalive ms]; prints "echo-grpc listening on host:port".

import * as grpc from "@grpc/grpc-js";
import { AgentRegistry, type HeartbeatRequest, type HeartbeatResponse, type RegisterRequest, type RegisterResponse } from "../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../src/grpc-service-definition.js";
import { beatReply, registerReply } from "./echo-replies.js";
import { reportLoopDelayOnSignal } from "./loop-delay-signal.js";

reportLoopDelayOnSignal();

const address = process.argv[2] ?? "127.0.0.1:0";
const keepaliveMs = Number(process.argv[3] ?? "30000");
const server = new grpc.Server({ "grpc.keepalive_time_ms": keepaliveMs, "grpc.keepalive_timeout_ms": Math.min(keepaliveMs, 20_000) });
server.addService(grpcServiceDefinition(AgentRegistry), {
  Register: (call: grpc.ServerUnaryCall<RegisterRequest, RegisterResponse>, callback: grpc.sendUnaryData<RegisterResponse>) =>
    callback(null, registerReply(call.request)),
  Heartbeat: (call: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) => {
    call.on("data", (request: HeartbeatRequest) => call.write(beatReply(request)));
    call.on("end", () => call.end());
    call.on("error", () => {});
  },
});
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error !== null) {
    process.stderr.write(`echo-grpc cannot listen on ${address}: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`echo-grpc listening on ${address.replace(/:\d+$/, "")}:${port}\n`);
});
const stop = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
