// `agent-registry agent`: flags -> AgentConfig -> NodeAgent, one start line, `leaving` on SIGTERM/SIGINT.

import type { Command } from "commander";
import { pino } from "pino";
import { loadAgentConfig } from "../config/index.js";
import { NodeAgent } from "../agent/node-agent.js";
import { channelCredentials } from "../agent/registry-connection.js";
import { addSettingOptions, givenFlags } from "./setting-options.js";

export function addAgentCommand(program: Command): void {
  const agentCommand = program
    .command("agent")
    .description("run the node daemon: register this node's Ollama with the registry and keep it alive with heartbeats");
  addSettingOptions(agentCommand, "agent").action(async (_options: unknown, command: Command) => {
    const config = loadAgentConfig(process.env, givenFlags(command, "agent"));
    const log = pino({ level: config.logLevel, base: { service: "agent-registry-agent" } }, pino.destination(2));
    const agent = new NodeAgent(
      {
        registryAddress: config.registryAddress,
        ollamaUrl: config.ollamaUrl,
        stateFile: config.stateFile,
        node: { hostname: config.hostname, ipAddress: config.ipAddress, port: config.port, labels: config.labels },
        connection: { credentials: await channelCredentials(config.security.tls), token: config.security.token },
        inventoryIntervalMs: config.inventoryIntervalMs,
      },
      { log },
    );
    const started = agent.start();
    // Listening before the start finishes, so an early SIGTERM still ends in a clean stop (and exit 0); a
    // second signal ends the process at once.
    const stop = (signal: string): void => {
      log.info({ signal }, "shutting down");
      void started.then(
        () => agent.stop(),
        () => undefined, // a failed start is reported below, where it is awaited
      );
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    const agentId = await started;
    process.stdout.write(
      `agent-registry agent ${agentId} (${config.hostname}) reporting to ${config.registryAddress}` +
        `${config.security.tls === undefined ? "" : " over TLS"}; ` +
        `Ollama ${config.ollamaUrl}; state file ${config.stateFile}\n`,
    );
    const exit = await agent.done;
    // Exit at once rather than wait for idle sockets (the Ollama probe's keep-alive) to close.
    if (exit.kind === "failed") {
      process.stderr.write(`agent-registry: ${exit.error.message}\n`);
      process.exit(1);
    }
    process.exit(0);
  });
}
