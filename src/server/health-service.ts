// grpc.health.v1.Health on the gRPC port, built from the generated descriptors like AgentRegistry: Check
// and Watch report the ServingState for "" (the whole server) and registry.v1.AgentRegistry.
// Watch sends the current status, then one message per change of status (the protocol's rule, not one
// per store write). Once shutdown begins it sends NOT_SERVING and ends with UNAVAILABLE: an open Watch
// (load balancers and gRPC client-side health checks keep one) must not hold a graceful shutdown for its
// whole grace period, only to be cut.

import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as WireStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { grpcServiceDefinition } from "../grpc-service-definition.js";
import type { ServingState } from "./serving-state.js";

const SERVICES = new Set(["", "registry.v1.AgentRegistry"]);

export function addHealthService(server: grpc.Server, serving: ServingState): void {
  const current = (): WireStatus => WireStatus[serving.status];
  const response = (status: WireStatus): HealthCheckResponse => create(HealthCheckResponseSchema, { status });

  server.addService(grpcServiceDefinition(Health), {
    Check(call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) {
      const service = call.request.service;
      if (SERVICES.has(service)) callback(null, response(current()));
      else callback({ code: grpc.status.NOT_FOUND, details: `no health status for service "${service}"; try "" or registry.v1.AgentRegistry` });
    },
    Watch(call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) {
      // An unknown service stays SERVICE_UNKNOWN (the protocol keeps the stream open for it, too).
      const known = SERVICES.has(call.request.service);
      let sent: WireStatus | undefined;
      let ended = false;
      let unsubscribe = (): void => {};
      const leave = (): void => {
        ended = true;
        unsubscribe();
      };
      const update = (): void => {
        if (ended) return;
        const status = known ? current() : WireStatus.SERVICE_UNKNOWN;
        if (status !== sent) {
          sent = status;
          call.write(response(status));
        }
        if (serving.shuttingDown) {
          leave();
          call.emit("error", { code: grpc.status.UNAVAILABLE, details: "the registry server is shutting down; watch again with backoff" });
        }
      };
      unsubscribe = serving.subscribe(update);
      call.on("cancelled", leave);
      call.on("close", leave);
      update();
    },
  });
}
