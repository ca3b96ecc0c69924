// `agent-registry serve`: flags -> ServerConfig -> startServer, one start line, clean exit on signals.

import { type Command, Option } from "commander";
import { loadServerConfig } from "../config/index.js";
import { startServer } from "../server/server.js";
import { type LogFormat, createLogger } from "./logger.js";
import { addLimitsOptions, limitsFlags } from "./limits-options.js";
import { logFormatOption, logLevelOption, onlyGivenFlags } from "./options.js";
import { addSecurityOptions, securityFlags } from "./security-options.js";

/** After a clean shutdown the process must end by itself within this long. */
const LEAK_WATCHDOG_MS = 3000;

export function addServeCommand(program: Command): void {
  const serve = program
    .command("serve")
    .description("run the registry server: gRPC (node daemons) and HTTP (Connect, curl) listeners over one registry")
    .addOption(new Option("--heartbeat-interval <seconds>", "seconds between beats, told to agents").env("HEARTBEAT_INTERVAL"))
    .addOption(new Option("--agent-timeout <seconds>", "seconds without a beat before an agent is OFFLINE").env("AGENT_TIMEOUT"))
    .addOption(new Option("--grpc-listen <host:port>", "gRPC listener address").env("REGISTRY_GRPC_LISTEN"))
    .addOption(new Option("--http-listen <host:port>", "HTTP listener address (Connect, gRPC-Web)").env("REGISTRY_HTTP_LISTEN"))
    .addOption(new Option("--data-dir <dir>", "directory holding agents.json").env("REGISTRY_DATA_DIR"))
    .addOption(logLevelOption())
    .addOption(logFormatOption());
  addSecurityOptions(serve);
  addLimitsOptions(serve);
  serve.action(async (options: Record<string, string | undefined>, command: Command) => {
    const config = loadServerConfig(process.env, {
      ...onlyGivenFlags(options, command),
      security: securityFlags(options, command),
      limits: limitsFlags(options, command),
    });
    const log = createLogger("agent-registry", options["logLevel"] ?? "info", (options["logFormat"] ?? "json") as LogFormat);
    const server = await startServer(config, { log });
    process.stdout.write(
      `agent-registry serving gRPC on ${server.grpcAddress} and HTTP on ${server.httpUrl}; ` +
        `data file ${server.dataFile}; heartbeat interval ${config.heartbeatIntervalMs / 1000} s, ` +
        `agent timeout ${config.agentTimeoutMs / 1000} s\n`,
    );
    const stop = (signal: string): void => {
      log.info({ signal }, "shutting down");
      server.close().then(
        () => {
          log.info({}, "stopped");
          // Every listener, stream and timer is closed now, so the process ends by itself. If something
          // still holds it open, say what and exit anyway: a process manager waits for us.
          setTimeout(() => {
            log.error({ handles: process.getActiveResourcesInfo() }, "handles left open after shutdown");
            process.exit(1);
          }, LEAK_WATCHDOG_MS).unref();
        },
        (error: unknown) => {
          log.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    // SIGHUP reads the token file again (and is never the default "terminate"); reloadTokens logs the outcome.
    process.on("SIGHUP", () => void server.reloadTokens());
  });
}
