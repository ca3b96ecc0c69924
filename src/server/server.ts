// Start-up wiring: opens the JSON file store, loads the registry, and starts both listeners (grpc-js for
// gRPC, connect-node for HTTP) over it. Returns a handle so tests can run many servers in one process.

import * as grpc from "@grpc/grpc-js";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createContextValues } from "@connectrpc/connect";
import type { AddressInfo } from "node:net";
import { type ServerConfig, formatAddress } from "../config.js";
import type { Clock } from "../registry/clock.js";
import { Registry, type RegistryLog } from "../registry/registry.js";
import { JsonFileStore } from "../store/json-file-store.js";
import { connectRoutes, peerHostKey } from "./connect-routes.js";
import { createGrpcServer } from "./grpc-server.js";
import { addHealthService } from "./health-service.js";
import { createHttpListener } from "./http-listener.js";
import { probeRoutes } from "./http-probes.js";
import { ServerMetrics } from "./metrics.js";
import { addReflection } from "./reflection.js";
import { RegistryHandlers } from "./registry-handlers.js";
import { ServingState } from "./serving-state.js";

export interface ServerHandle {
  /** host:port the gRPC listener is bound to (the real port when 0 was asked). */
  readonly grpcAddress: string;
  /** http://host:port of the HTTP listener. */
  readonly httpUrl: string;
  readonly dataFile: string;
  readonly registry: Registry;
  readonly store: JsonFileStore;
  readonly metrics: ServerMetrics;
  readonly serving: ServingState;
  /** Ends open streams with UNAVAILABLE, stops both listeners, writes what is pending, releases the lock. */
  close(): Promise<void>;
}

export interface ServerDeps {
  readonly clock?: Clock;
  readonly log?: RegistryLog;
  /** Events a watcher may fall behind before it is cut off (default 1024). */
  readonly watchQueueLimit?: number;
}

const SHUTDOWN_GRACE_MS = 2000;

export async function startServer(config: ServerConfig, deps: ServerDeps = {}): Promise<ServerHandle> {
  const log = deps.log ?? { info() {}, warn() {}, error() {} };
  let registryForStats: Registry | undefined;
  const metrics = new ServerMetrics(
    () => registryForStats?.stats() ?? { online: 0, offline: 0, streams: 0, watchers: 0 },
  );
  const serving = new ServingState();
  let storeFailing = false;
  const store = await JsonFileStore.open(config.dataDir, {
    observer: {
      written(outcome) {
        metrics.written(outcome);
        serving.written(outcome);
        // One line when writes start failing and one when they recover, not one per retry.
        if (!outcome.ok && !storeFailing) log.error({ err: outcome.error }, "store writes failing: not serving until they recover");
        if (outcome.ok && storeFailing) log.info({}, "store writes recovered: serving again");
        storeFailing = !outcome.ok;
      },
    },
  });
  const cleanup: Array<() => Promise<void>> = [() => store.close()];
  const unwind = async (error: unknown): Promise<never> => {
    for (const step of cleanup.reverse()) await step();
    throw error;
  };
  try {
    const registry = await Registry.open({
      store,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      agentTimeoutMs: config.agentTimeoutMs,
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
      watchQueueLimit: deps.watchQueueLimit ?? config.limits.watchQueueLimit,
      log,
      observer: metrics,
    });
    registryForStats = registry;
    cleanup.push(() => registry.close());
    const shutdown = new AbortController();
    const handlers = new RegistryHandlers(registry, shutdown.signal, metrics);

    // Ping a connection idle for one heartbeat interval (bounded to 1-30 s), so a half-open one is closed
    // and its agent stops showing stream_connected well before its deadline.
    const keepaliveTimeMs = Math.min(Math.max(config.heartbeatIntervalMs, 1000), 30_000);
    const grpcServer = createGrpcServer(handlers, log, metrics, {
      keepaliveTimeMs,
      keepaliveTimeoutMs: Math.min(keepaliveTimeMs, 20_000),
    });
    addHealthService(grpcServer, serving);
    addReflection(grpcServer);
    const grpcPort = await bindGrpc(grpcServer, formatAddress(config.grpcListen));
    cleanup.push(() => new Promise((resolve) => grpcServer.tryShutdown(() => resolve())));

    const http = createHttpListener(
      connectNodeAdapter({
        routes: connectRoutes(handlers, log, metrics),
        fallback: probeRoutes(serving, metrics, log),
        // Strict input (an unknown field or enum name is INVALID_ARGUMENT, not silently "any"), and full
        // output: curl users see streamConnected: false rather than a missing key.
        jsonOptions: { ignoreUnknownFields: false, alwaysEmitImplicit: true },
        contextValues: (request) => createContextValues().set(peerHostKey, request.socket.remoteAddress),
      }),
    );
    await listen(http.server, config.httpListen.host, config.httpListen.port);
    const httpPort = (http.server.address() as AddressInfo).port;

    let closing: Promise<void> | undefined;
    return {
      grpcAddress: formatAddress({ host: config.grpcListen.host, port: grpcPort }),
      httpUrl: `http://${formatAddress({ host: config.httpListen.host, port: httpPort })}`,
      dataFile: store.location,
      registry,
      store,
      metrics,
      serving,
      close: () =>
        (closing ??= (async () => {
          // Health first (load balancers stop sending); no more timeouts (agents cannot beat while they
          // move to the next server); end streams with UNAVAILABLE, refuse new calls while unary ones
          // finish, and write what is pending.
          serving.shutdown();
          registry.stopLiveness();
          shutdown.abort();
          await Promise.all([shutdownGrpc(grpcServer), http.close(SHUTDOWN_GRACE_MS)]);
          await registry.close();
          await store.close();
        })()),
    };
  } catch (error) {
    return unwind(error);
  }
}

function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error === null) resolve(port);
      else reject(new Error(`cannot listen for gRPC on ${address}: ${error.message}`));
    });
  });
}

function listen(server: import("node:net").Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(new Error(`cannot listen for HTTP on ${formatAddress({ host, port })}: ${error.message}`));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Lets unary calls finish for a grace period, then cuts what is left. */
function shutdownGrpc(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
