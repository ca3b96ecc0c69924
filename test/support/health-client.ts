// A grpc.health.v1.Health client on the gRPC port (@grpc/grpc-js, built from the generated descriptors):
// Check, and Watch that records every status it is sent and how the stream ended.

import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  Health,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { grpcServiceDefinition } from "../../src/grpc-service-definition.js";
import { RpcError } from "./clients.js";

/** Status names as grpcurl prints them: "SERVING", "NOT_SERVING", ... */
export type ServingStatusName = keyof typeof HealthCheckResponse_ServingStatus;

export interface HealthWatch {
  /** Every status received so far, oldest first. */
  readonly statuses: ServingStatusName[];
  /** How the stream ended, once it has (code 0 when the server ended it cleanly). */
  readonly ended: RpcError | undefined;
  cancel(): void;
}

export interface HealthClient {
  check(service?: string): Promise<ServingStatusName>;
  watch(service?: string): HealthWatch;
  close(): void;
}

const statusName = (response: HealthCheckResponse): ServingStatusName =>
  HealthCheckResponse_ServingStatus[response.status] as ServingStatusName;

export function healthClient(address: string): HealthClient {
  const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(Health), "Health");
  const client = new Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }) as unknown as grpc.Client & {
    Check(request: unknown, callback: (error: grpc.ServiceError | null, response: HealthCheckResponse) => void): void;
    Watch(request: unknown): grpc.ClientReadableStream<HealthCheckResponse>;
  };
  return {
    check: (service = "") =>
      new Promise((resolve, reject) =>
        client.Check(create(HealthCheckRequestSchema, { service }), (error, response) =>
          error === null ? resolve(statusName(response)) : reject(new RpcError(error.code, error.details)),
        ),
      ),
    watch(service = "") {
      const call = client.Watch(create(HealthCheckRequestSchema, { service }));
      const watch = { statuses: [] as ServingStatusName[], ended: undefined as RpcError | undefined, cancel: () => call.cancel() };
      call.on("data", (response: HealthCheckResponse) => watch.statuses.push(statusName(response)));
      call.on("status", (status: grpc.StatusObject) => (watch.ended = new RpcError(status.code, status.details)));
      call.on("error", () => {}); // reported through "status"
      return watch;
    },
    close: () => client.close(),
  };
}
