#!/usr/bin/env node
// The agent-registry command line: parses flags and hands over to the server (and later the agent and
// the client commands). No logic of its own.

import { Command, Option } from "commander";
import { pino } from "pino";
import { ConfigError, loadServerConfig } from "../config.js";
import { startServer } from "../server/server.js";

const program = new Command()
  .name("agent-registry")
  .description("A control plane that knows which Ollama nodes exist and which of them are alive.")
  .showHelpAfterError();

program
  .command("serve")
  .description("run the registry server: gRPC (node daemons) and HTTP (Connect, curl) listeners over one registry")
  .addOption(new Option("--heartbeat-interval <seconds>", "seconds between beats, told to agents").env("HEARTBEAT_INTERVAL"))
  .addOption(new Option("--agent-timeout <seconds>", "seconds without a beat before an agent is OFFLINE").env("AGENT_TIMEOUT"))
  .addOption(new Option("--grpc-listen <host:port>", "gRPC listener address").env("REGISTRY_GRPC_LISTEN"))
  .addOption(new Option("--http-listen <host:port>", "HTTP listener address (Connect, gRPC-Web)").env("REGISTRY_HTTP_LISTEN"))
  .addOption(new Option("--data-dir <dir>", "directory holding agents.json").env("REGISTRY_DATA_DIR"))
  .addOption(
    new Option("--log-level <level>", "log level")
      .choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
      .default("info")
      .env("LOG_LEVEL"),
  )
  .action(async (options: Record<string, string | undefined>, command: Command) => {
    // Commander fills options from env too; pass only real flags so messages name what the user set.
    const flags = Object.fromEntries(
      Object.keys(options)
        .filter((key) => command.getOptionValueSource(key) === "cli")
        .map((key) => [key, options[key]]),
    );
    const config = loadServerConfig(process.env, flags);
    const log = pino({ level: options["logLevel"] ?? "info", base: { service: "agent-registry" } }, pino.destination(2));
    const server = await startServer(config, { log });
    process.stdout.write(
      `agent-registry serving gRPC on ${server.grpcAddress} and HTTP on ${server.httpUrl}; ` +
        `data file ${server.dataFile}; heartbeat interval ${config.heartbeatIntervalMs / 1000} s, ` +
        `agent timeout ${config.agentTimeoutMs / 1000} s\n`,
    );
    const stop = (signal: string): void => {
      log.info({ signal }, "shutting down");
      server.close().then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`agent-registry: ${message}\n`);
  if (!(error instanceof ConfigError) && process.env["LOG_LEVEL"] === "debug" && error instanceof Error) {
    process.stderr.write(`${error.stack}\n`);
  }
  process.exitCode = 1;
});
