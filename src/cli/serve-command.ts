// `agent-registry serve`: flags -> ServerConfig -> startServer, one start line, clean exit on signals.

import type { Command } from "commander";
import { loadLogConfig, loadServerConfig } from "../config/index.js";
import { startServer } from "../server/server.js";
import { createLogger } from "./logger.js";
import { markOnTheMainThreadOnOneCpu } from "./one-cpu-gc.js";
import { addSettingOptions, givenFlags } from "./setting-options.js";

/** After a clean shutdown the process must end by itself within this long. */
const LEAK_WATCHDOG_MS = 3000;

export function addServeCommand(program: Command): void {
  const serve = program
    .command("serve")
    .description("run the registry server: gRPC (node daemons) and HTTP (Connect, curl) listeners over one registry");
  addSettingOptions(serve, "serve").action(async (_options: unknown, command: Command) => {
    const flags = givenFlags(command, "serve");
    const config = loadServerConfig(process.env, flags);
    const logging = loadLogConfig(process.env, flags);
    const log = await createLogger("agent-registry", logging.level, logging.format);
    if (markOnTheMainThreadOnOneCpu()) log.info({}, "one CPU: V8 marks the heap on the main thread, so the beats keep the core during a collection");
    const server = await startServer(config, { log });
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
    // SIGHUP reads the token file and the TLS files again (and is never the default "terminate"); reload
    // logs the outcome.
    process.on("SIGHUP", () => void server.reload());
    // The start line last: whoever waits for it (a test, a process manager) may signal at once, so every
    // handler is in place before it is written.
    process.stdout.write(
      `agent-registry serving gRPC on ${server.grpcAddress} and HTTP on ${server.httpUrl}; ` +
        `data file ${server.dataFile}; heartbeat interval ${config.heartbeatIntervalMs / 1000} s, ` +
        `agent timeout ${config.agentTimeoutMs / 1000} s\n`,
    );
  });
}
