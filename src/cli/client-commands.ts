// `agent-registry list | get | deregister | watch`: the operator's commands (deregister also a node owner's). Each parses its flags, calls the
// registry's HTTP listener over Connect (HTTP/1.1: enough for unary calls and server streams) and prints.
// Formatting lives in agent-table.ts, agent-detail.ts and watch-line.ts; failure lines in client-errors.ts.

import { create, toJsonString } from "@bufbuild/protobuf";
import type { CallOptions, Client } from "@connectrpc/connect";
import { type Command, Option } from "commander";
import {
  type Agent,
  AgentRegistry,
  AgentStatus,
  GetAgentResponseSchema,
  ListAgentsResponseSchema,
  WatchAgentsResponseSchema,
} from "../../gen/registry/v1/registry_pb.js";
import { createRegistryClient } from "../client/registry-client.js";
import { readClientTlsFiles } from "../common/client-tls-files.js";
import { type DeregisterTarget, loadClientConfig, loadDeregisterTarget } from "../config/index.js";
import { loadAgentState } from "../agent/agent-state-file.js";
import { formatAgentDetail } from "./agent-detail.js";
import { formatAgentTable } from "./agent-table.js";
import { describeCallError } from "./client-errors.js";
import { addSettingOptions, givenFlags } from "./setting-options.js";
import { formatWatchLine } from "./watch-line.js";

/** Agents per ListAgents call: big fleets come in several pages, each a small message. */
const PAGE_SIZE = 500;
/** Deadline of each unary call; a watch has none. */
const CALL_TIMEOUT_MS = 15_000;

interface FilterOptions {
  status?: "online" | "offline";
  selector?: string;
  model?: string;
  loadedModel?: string;
  ready?: boolean;
}

interface JsonOption {
  json?: boolean;
}

export function addClientCommands(program: Command): void {
  inventoryOptions(clientCommand(program, "list"))
    .description("list the agents, sorted by hostname then id (every page)")
    .addOption(statusOption())
    .addOption(selectorOption())
    .option("--json", "print one ListAgentsResponse in protobuf JSON holding every agent, as curl would get it")
    .action(async (options: FilterOptions & JsonOption, command: Command) => {
      const registry = await connect(command);
      const agents = await listAll(registry, options);
      if (options.json === true) {
        print(toJsonString(ListAgentsResponseSchema, create(ListAgentsResponseSchema, { agents }), JSON_OPTIONS));
      } else if (agents.length === 0) {
        // On stderr, so that stdout stays a table (or nothing) for scripts that cut columns.
        process.stderr.write(filtered(options) ? "no agents match\n" : "no agents registered\n");
      } else {
        process.stdout.write(formatAgentTable(agents, Date.now()));
      }
    });

  clientCommand(program, "get")
    .description("show one agent in detail")
    .argument("<agent-id>", "the agent's id (a UUID, as `list` shows it)")
    .option("--json", "print the GetAgentResponse in protobuf JSON, as curl would get it")
    .action(async (agentId: string, options: JsonOption, command: Command) => {
      const registry = await connect(command);
      const response = await call(registry, "GetAgent", (client) => client.getAgent({ agentId }, unary()));
      if (options.json === true) print(toJsonString(GetAgentResponseSchema, response, JSON_OPTIONS));
      else if (response.agent === undefined) throw new Error(`the registry at ${registry.url} answered GetAgent without an agent`);
      else process.stdout.write(formatAgentDetail(response.agent, Date.now()));
    });

  addSettingOptions(clientCommand(program, "deregister"), "deregister")
    .description(
      "remove an agent from the registry and its file (a running node daemon registers again); an admin token removes any id, an agent token only its own, with the node's secret",
    )
    .argument("[agent-id]", "the agent's id (a UUID, as `list` shows it); not needed with --state-file")
    .action(async (agentId: string | undefined, _options: unknown, command: Command) => {
      const { agentId: id, secret } = await deregisterTarget(loadDeregisterTarget(process.env, givenFlags(command, "deregister"), agentId));
      const registry = await connect(command);
      await call(registry, "Deregister", (client) => client.deregister({ agentId: id, agentSecret: secret ?? "" }, unary()));
      print(`deregistered ${id}`);
    });

  inventoryOptions(clientCommand(program, "watch"))
    .description("print the matching agents, then one line per change, until interrupted (Ctrl-C exits 0)")
    .addOption(statusOption())
    .addOption(selectorOption())
    .option("--json", "print NDJSON: one WatchAgentsResponse in protobuf JSON per line")
    .action(async (options: FilterOptions & JsonOption, command: Command) => {
      await watch(await connect(command), options);
    });
}

/** Every field, defaults included, as the server's own JSON answers have them. */
const JSON_OPTIONS = { alwaysEmitImplicit: true } as const;

interface Registry {
  readonly url: string;
  readonly client: Client<typeof AgentRegistry>;
}

async function connect(command: Command): Promise<Registry> {
  const { url, security } = loadClientConfig(process.env, givenFlags(command, "client"));
  const tls = security.tls === undefined ? undefined : await readClientTlsFiles(security.tls);
  return { url, client: createRegistryClient(url, { token: security.token, tls }) };
}

/** The id to remove and the secret proving the caller is that node: as given, or from the daemon's state file. */
async function deregisterTarget(target: DeregisterTarget): Promise<{ agentId: string; secret: string | undefined }> {
  if (target.kind === "id") return target;
  const state = await loadAgentState(target.path);
  if (state === undefined) {
    throw new Error(`there is no agent state file at ${target.path}; give the path of the node daemon's agent-state.json, or the agent id`);
  }
  return { agentId: state.agentId, secret: state.agentSecret };
}

/** Runs one call; a failure becomes an Error whose message is the one line to print. */
async function call<T>(registry: Registry, method: string, run: (client: Registry["client"]) => Promise<T>): Promise<T> {
  try {
    return await run(registry.client);
  } catch (error) {
    throw new Error(describeCallError(error, { url: registry.url, method }), { cause: error });
  }
}

const unary = (): CallOptions => ({ timeoutMs: CALL_TIMEOUT_MS });

async function listAll(registry: Registry, options: FilterOptions): Promise<Agent[]> {
  const agents: Agent[] = [];
  let pageToken = "";
  do {
    const page = await call(registry, "ListAgents", (client) =>
      client.listAgents({ ...filterRequest(options), pageSize: PAGE_SIZE, pageToken }, unary()),
    );
    agents.push(...page.agents);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return agents;
}

async function watch(registry: Registry, options: FilterOptions & JsonOption): Promise<void> {
  const stop = new AbortController();
  const interrupt = (): void => stop.abort();
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  // Output that can no longer be written ends the watch too (endQuietlyWhenStdoutCloses says why, if needed).
  process.stdout.on("error", interrupt);
  try {
    await call(registry, "WatchAgents", async (client) => {
      for await (const event of client.watchAgents(filterRequest(options), { signal: stop.signal })) {
        print(options.json === true ? toJsonString(WatchAgentsResponseSchema, event, JSON_OPTIONS) : formatWatchLine(event, Date.now()));
      }
    });
  } catch (error) {
    // Interrupted on purpose: the call ends with CANCELED, which is how a watch is meant to end.
    if (!stop.signal.aborted) throw error;
  } finally {
    process.off("SIGINT", interrupt);
    process.off("SIGTERM", interrupt);
    process.stdout.off("error", interrupt);
  }
  if (!stop.signal.aborted) throw new Error(`the registry at ${registry.url} ended the watch; watch again`);
}

function filterRequest(options: FilterOptions): { status: AgentStatus; labelSelector: string; model: string; loadedModel: string; ready: boolean } {
  const status = options.status === "online" ? AgentStatus.ONLINE : options.status === "offline" ? AgentStatus.OFFLINE : AgentStatus.UNSPECIFIED;
  return { status, labelSelector: options.selector ?? "", model: options.model ?? "", loadedModel: options.loadedModel ?? "", ready: options.ready === true };
}

function filtered(options: FilterOptions): boolean {
  return options.status !== undefined || (options.selector ?? "") !== "" || options.model !== undefined || options.loadedModel !== undefined || options.ready === true;
}

/** --model, --loaded-model and --ready: the inventory filters of ListAgents and WatchAgents. */
function inventoryOptions(command: Command): Command {
  return command
    .option("--model <name>", "only agents with this model installed, e.g. llama3.1:8b")
    .option("--loaded-model <name>", "only agents with this model loaded now")
    .option("--ready", "only agents a load balancer should use: ONLINE, not draining, not held, reachable");
}

/**
 * A reader that goes away (`list | head -3`) does not want the rest: that is not a failure, and must not
 * end in Node's unhandled-EPIPE stack trace. Any other stdout error is reported in one line.
 */
function endQuietlyWhenStdoutCloses(): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") return;
    process.stderr.write(`agent-registry: cannot write the output: ${error.message}\n`);
    process.exitCode = 1;
  });
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A subcommand that talks to the registry: --url and credentials, and quiet on a closed stdout. */
function clientCommand(program: Command, name: string): Command {
  return addSettingOptions(program.command(name), "client").hook("preAction", endQuietlyWhenStdoutCloses);
}

function statusOption(): Option {
  return new Option("--status <status>", "only agents with this status").choices(["online", "offline"]);
}

function selectorOption(): Option {
  return new Option("--selector <k=v,...>", "only agents with all of these labels, e.g. gpu=a100,zone=eu");
}
