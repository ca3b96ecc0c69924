// `agent-registry agent`: flags -> AgentConfig -> NodeAgent, one start line, `leaving` on SIGTERM/SIGINT.

import { type Command, Option } from "commander";
import { pino } from "pino";
import { type AgentFlags, loadAgentConfig } from "../config/index.js";
import { NodeAgent } from "../agent/node-agent.js";
import { channelCredentials } from "../agent/registry-connection.js";
import { logLevelOption } from "./options.js";

export function addAgentCommand(program: Command): void {
  program
    .command("agent")
    .description("run the node daemon: register this node's Ollama with the registry and keep it alive with heartbeats")
    .addOption(new Option("--registry-addr <host:port>", "the registry's gRPC address").env("REGISTRY_ADDR"))
    .addOption(new Option("--ollama-url <url>", "this node's Ollama (probed at <url>/api/version)").env("OLLAMA_URL"))
    .addOption(new Option("--hostname <name>", "the host name to register (default: this machine's)"))
    .addOption(
      new Option("--label <key=value>", "a label to register; repeat for more")
        .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
    )
    .addOption(new Option("--state-file <path>", "where the node keeps its id (default: $REGISTRY_DATA_DIR/agent-state.json)"))
    .addOption(new Option("--data-dir <dir>", "directory holding agent-state.json").env("REGISTRY_DATA_DIR"))
    .addOption(new Option("--token <token>", "bearer token with the agent role (prefer the env variable: flags show in ps)").env("REGISTRY_TOKEN"))
    .addOption(new Option("--tls", "connect with TLS, trusting the system's CAs (implied by --ca and --cert)"))
    .addOption(new Option("--ca <path>", "CA certificates (PEM) to verify the registry by; turns TLS on").env("REGISTRY_CA"))
    .addOption(new Option("--cert <path>", "client certificate (PEM) for a registry that requires mutual TLS").env("REGISTRY_CLIENT_CERT"))
    .addOption(new Option("--key <path>", "the private key of --cert (PEM)").env("REGISTRY_CLIENT_KEY"))
    .addOption(logLevelOption())
    .action(async (options: Record<string, unknown>, command: Command) => {
      // Only what was given on the command line: src/config reads env itself, to name the variable in errors.
      const given = (key: string): string | undefined =>
        command.getOptionValueSource(key) === "cli" && typeof options[key] === "string" ? options[key] : undefined;
      const flags: AgentFlags = {
        registryAddr: given("registryAddr"),
        ollamaUrl: given("ollamaUrl"),
        hostname: given("hostname"),
        label: Array.isArray(options["label"]) ? options["label"].map(String) : [],
        stateFile: given("stateFile"),
        dataDir: given("dataDir"),
        token: given("token"),
        ca: given("ca"),
        cert: given("cert"),
        key: given("key"),
        tls: command.getOptionValueSource("tls") === "cli" ? options["tls"] === true : undefined,
      };
      const config = loadAgentConfig(process.env, flags);
      const level = typeof options["logLevel"] === "string" ? options["logLevel"] : "info";
      const log = pino({ level, base: { service: "agent-registry-agent" } }, pino.destination(2));
      const agent = new NodeAgent(
        {
          registryAddress: config.registryAddress,
          ollamaUrl: config.ollamaUrl,
          stateFile: config.stateFile,
          node: { hostname: config.hostname, ipAddress: config.ipAddress, port: config.port, labels: config.labels },
          connection: { credentials: await channelCredentials(config.security.tls), token: config.security.token },
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
