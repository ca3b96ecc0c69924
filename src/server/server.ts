// Start-up wiring: opens the configured store, loads the registry, and starts both listeners (grpc-js for
// gRPC, connect-node for HTTP) over it. Returns a handle so tests can run many servers in one process.
// Security (server-security.ts) wraps the AgentRegistry calls only: grpc.health.v1.Health, reflection and
// the HTTP probes stay open to callers without a token, because load balancers, Prometheus and grpcurl
// must reach them without a secret and they reveal nothing about the fleet but counts.

import { ReachabilityProbe } from "./reachability-probe.js";
import * as grpc from "@grpc/grpc-js";
import { AgentRegistry } from "../../gen/registry/v1/registry_pb.js";
import { createContextValues } from "@connectrpc/connect";
import type { AddressInfo } from "node:net";
import { type ServerConfig, formatAddress } from "../config/index.js";
import { flagAndEnv } from "../config/setting.js";
import { SETTINGS } from "../config/settings.js";
import { type Clock, serverClock } from "../common/clock.js";
import { type Log, silentLog } from "../common/log.js";
import { Registry } from "../registry/registry.js";
import type { Store } from "../registry/store.js";
import { openServerStore } from "../store/open-store.js";
import { connectAdapter } from "./connect-adapter.js";
import { connectJsonList } from "./connect-json-list.js";
import { HTTP_JSON_OPTIONS } from "./wire.js";
import { authInterceptor, clientCertificateKey, requestClientCertificate } from "./connect-auth.js";
import { connectRoutes, peerHostKey } from "./connect-routes.js";
import { Disclosure } from "./disclosure.js";
import { guardExposure } from "./exposure-guard.js";
import { createGrpcServer } from "./grpc-server.js";
import { addHealthService } from "./health-service.js";
import { createHttpListener } from "./http-listener.js";
import { findDashboardDir, loadDashboard } from "./dashboard-files.js";
import { probeRoutes } from "./http-probes.js";
import { ServerMetrics } from "./metrics.js";
import { addReflection } from "./reflection.js";
import { RegistryHandlers } from "./registry-handlers.js";
import { ServerSecurity } from "./server-security.js";
import { ServingState } from "./serving-state.js";
import { Shutdown } from "./shutdown.js";
import { Admission } from "./admission.js";
import { LimitLog } from "./limit-log.js";
import { sizeReportingCompressions, watchConnectionStreams, watchGrpcListener, watchRequestSize } from "./transport-refusals.js";

export interface ServerHandle {
  /** host:port the gRPC listener is bound to (the real port when 0 was asked). */
  readonly grpcAddress: string;
  /** http://host:port of the HTTP listener (https:// with TLS). */
  readonly httpUrl: string;
  /** Where the store keeps the agents: agents.json or registry.db. */
  readonly dataFile: string;
  readonly registry: Registry;
  readonly store: Store;
  readonly metrics: ServerMetrics;
  readonly serving: ServingState;
  /**
   * Reads the token file and the TLS files again (the CLI calls it on SIGHUP); false, with an error logged,
   * if one could not be, which then stays as it was.
   */
  reload(): Promise<boolean>;
  /** Ends open streams with UNAVAILABLE, stops both listeners, writes what is pending, releases the lock. */
  close(): Promise<void>;
}

export interface ServerDeps {
  readonly clock?: Clock;
  readonly log?: Log;
}

const SHUTDOWN_GRACE_MS = 2000;

export async function startServer(config: ServerConfig, deps: ServerDeps = {}): Promise<ServerHandle> {
  const log = deps.log ?? silentLog;
  guardExposure(config, log);
  const disclosure = Disclosure.of(config);
  const security = await ServerSecurity.open(config.security, log);
  let registryForStats: Registry | undefined;
  const metrics = new ServerMetrics(
    config.limits.maxAgents,
    () =>
      registryForStats?.stats() ?? {
        online: 0,
        offline: 0,
        streams: 0,
        watchers: 0,
        held: 0,
        guardActive: false,
        toldIntervalMs: config.heartbeatIntervalMs,
      },
  );
  const serving = new ServingState();
  let storeFailing = false;
  const store = await openServerStore(config, {
    log,
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
      offlineGuard: config.liveness.offlineGuard,
      maxBeatsPerSecond: config.liveness.maxBeatsPerSecond,
      fleetCap: { maxAgents: config.limits.maxAgents, setting: flagAndEnv(SETTINGS.maxAgents) },
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
      watchQueueLimit: config.limits.watchQueueLimit,
      // Heartbeat times go to the store once per heartbeat interval (1 to 30 s): fresher times on disk buy
      // nothing, since a restart gives every agent a full timeout of grace.
      flushIntervalMs: Math.min(Math.max(config.heartbeatIntervalMs, 1000), 30_000),
      log,
      observer: metrics,
      // With authentication off anyone may do anything anyway; secrets are still issued and stored.
      enforceSecrets: security.authorizer.enabled,
    });
    registryForStats = registry;
    cleanup.push(() => registry.close());
    const probeIntervalMs = config.probeIntervalMs ?? 0;
    const probe = probeIntervalMs > 0 ? new ReachabilityProbe({ registry, intervalMs: probeIntervalMs, log, ...(deps.clock === undefined ? {} : { clock: deps.clock }) }) : undefined;
    probe?.start();
    if (probe !== undefined) cleanup.push(() => probe.close());
    const shutdown = new Shutdown();
    const { limits } = config;
    const limitLog = new LimitLog(log, deps.clock ?? serverClock, metrics);
    const admission = new Admission(limits, deps.clock ?? serverClock, limitLog);
    const handlers = new RegistryHandlers(registry, shutdown, metrics, admission);

    // Ping a connection idle for one heartbeat interval (bounded to 1-30 s), so a half-open one is closed
    // and its agent stops showing stream_connected well before its deadline.
    const keepaliveTimeMs = Math.min(Math.max(config.heartbeatIntervalMs, 1000), 30_000);
    const grpcServer = createGrpcServer(handlers, log, metrics, {
      keepaliveTimeMs,
      keepaliveTimeoutMs: Math.min(keepaliveTimeMs, 20_000),
      authorizer: security.authorizer,
      maxMessageBytes: limits.maxMessageBytes,
      maxStreamsPerConnection: limits.maxStreamsPerConnection,
      disclosure,
    });
    addHealthService(grpcServer, serving);
    addReflection(grpcServer);
    const grpcPort = await bindGrpc(grpcServer, formatAddress(config.grpcListen), security.tls?.grpc);
    cleanup.push(() => new Promise((resolve) => grpcServer.tryShutdown(() => resolve())));
    watchGrpcListener(grpcServer, limits.maxStreamsPerConnection, limitLog);

    const dashboard = await loadDashboard(await findDashboardDir());
    if (!dashboard.built) log.warn({}, "the fleet dashboard is not built (no dist/web): / answers 404; `npm run build` builds it");
    const http = createHttpListener(
      withOversizedRequestLog(connectAdapter({
        log,
        // Larger messages, compressed or not, are RESOURCE_EXHAUSTED.
        readMaxBytes: limits.maxMessageBytes,
        acceptCompression: sizeReportingCompressions(limitLog),
        routes: connectRoutes(handlers, log, metrics, disclosure),
        interceptors: [authInterceptor(security.authorizer, log, metrics)],
        fastPaths: new Map([
          [
            `/${AgentRegistry.typeName}/${AgentRegistry.method.listAgents.name}`,
            connectJsonList({ handlers, authorizer: security.authorizer, log, metrics, disclosure, readMaxBytes: limits.maxMessageBytes }),
          ],
        ]),
        fallback: probeRoutes(serving, metrics, log, () => registry.offlineHold, disclosure, dashboard),
        jsonOptions: HTTP_JSON_OPTIONS,
        contextValues: (request) =>
          createContextValues()
            .set(peerHostKey, request.socket.remoteAddress)
            .set(clientCertificateKey, requestClientCertificate(request)),
      }), limits.maxMessageBytes, limitLog),
      security.tls?.http,
      {
        maxStreamsPerConnection: limits.maxStreamsPerConnection,
        watch: (h2) => watchConnectionStreams(h2, limits.maxStreamsPerConnection, limitLog, "http"),
        keepaliveTimeMs,
      },
    );
    security.tls?.onHttpUpdate((options) => http.updateTls(options));
    await listen(http.server, config.httpListen.host, config.httpListen.port);
    const httpPort = (http.server.address() as AddressInfo).port;

    let closing: Promise<void> | undefined;
    return {
      grpcAddress: formatAddress({ host: config.grpcListen.host, port: grpcPort }),
      httpUrl: `${security.tls === undefined ? "http" : "https"}://${formatAddress({ host: config.httpListen.host, port: httpPort })}`,
      dataFile: store.location,
      registry,
      store,
      metrics,
      serving,
      reload: () => security.reload(),
      close: () =>
        (closing ??= (async () => {
          // Health first (load balancers stop sending); no more timeouts (agents cannot beat while they
          // move to the next server); end streams with UNAVAILABLE, refuse new calls while unary ones
          // finish, and write what is pending.
          serving.shutdown();
          registry.stopLiveness();
          await probe?.close();
          shutdown.start();
          await Promise.all([shutdownGrpc(grpcServer), http.close(SHUTDOWN_GRACE_MS)]);
          await registry.close();
          await store.close();
        })()),
    };
  } catch (error) {
    return unwind(error);
  }
}

/** Notes (for the limit log) request messages connect-node refuses as too large. */
function withOversizedRequestLog(
  handler: ReturnType<typeof connectAdapter>,
  maxMessageBytes: number,
  limitLog: LimitLog,
): ReturnType<typeof connectAdapter> {
  return (request, response) => {
    watchRequestSize(request, maxMessageBytes, limitLog);
    handler(request, response);
  };
}

function bindGrpc(server: grpc.Server, address: string, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
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
