// The daemon's connection reads a server's retry hint (`grpc-retry-pushback-ms` in the trailers) into the
// failure of a Register and the end of a Heartbeat stream, against a bare grpc-js server on loopback that
// refuses everything the way a rate-limited registry does.

import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { AgentRegistry } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryConnection, RpcFailure, connectRegistry, retryPushbackMs } from "../../src/agent/registry-connection.js";
import { grpcServiceDefinition } from "../../src/grpc-service-definition.js";

let server: grpc.Server | undefined;
let connection: RegistryConnection | undefined;

afterEach(async () => {
  connection?.close();
  connection = undefined;
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.tryShutdown(() => resolve())));
  server = undefined;
});

/** A server that ends every Register and Heartbeat with RESOURCE_EXHAUSTED and these trailers. */
async function refusingServer(trailers: Record<string, string>): Promise<string> {
  const metadata = (): grpc.Metadata => {
    const result = new grpc.Metadata();
    for (const [key, value] of Object.entries(trailers)) result.set(key, value);
    return result;
  };
  const refusal = (): Partial<grpc.StatusObject> => ({ code: grpc.status.RESOURCE_EXHAUSTED, details: "slow down", metadata: metadata() });
  server = new grpc.Server();
  server.addService(grpcServiceDefinition(AgentRegistry), {
    Register: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(refusal()),
    Heartbeat: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.emit("error", refusal()),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server?.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
  );
  return `127.0.0.1:${port}`;
}

async function registerFailure(address: string): Promise<RpcFailure> {
  connection = connectRegistry(address);
  const failure: unknown = await connection.register({ hostname: "gpu-01" }, 5000).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(failure instanceof RpcFailure)) throw new Error(`expected an RpcFailure, got ${String(failure)}`);
  return failure;
}

describe("the registry connection and retry hints", () => {
  it("carries the hint of a refused Register in its RpcFailure", async () => {
    const failure = await registerFailure(await refusingServer({ "grpc-retry-pushback-ms": "1500" }));

    expect(failure).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: "slow down", retryAfterMs: 1500 });
  });

  it("carries the hint of a Heartbeat stream's end in its StreamEnd", async () => {
    connection = connectRegistry(await refusingServer({ "grpc-retry-pushback-ms": "250" }));

    const end = await connection.heartbeat().ended;

    expect(end).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, details: "slow down", retryAfterMs: 250 });
  });

  it("has no hint when the server gave none", async () => {
    const failure = await registerFailure(await refusingServer({}));

    expect(failure.retryAfterMs).toBeUndefined();
  });
});

describe("retryPushbackMs", () => {
  const of = (value: string): number | undefined => {
    const metadata = new grpc.Metadata();
    metadata.set("grpc-retry-pushback-ms", value);
    return retryPushbackMs(metadata);
  };

  it("reads whole milliseconds", () => {
    expect([of("0"), of("1000"), of(" 42 ")]).toEqual([0, 1000, 42]);
  });

  it("ignores a hint that is not a non-negative whole number, so the backoff applies", () => {
    expect([of("-1"), of("1.5"), of("soon"), of(""), of("99999999999999999999")]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(retryPushbackMs(new grpc.Metadata())).toBeUndefined();
    expect(retryPushbackMs(undefined)).toBeUndefined();
  });
});
