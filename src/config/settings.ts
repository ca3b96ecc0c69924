// The table of every setting of every command: its variable, flag, default, parser and help in one row.
// The loaders (server-config.ts, agent-config.ts, client-config.ts, ...) read their settings through it, the
// commands make their flags from it (cli/setting-options.ts), and test/config/readme.test.ts holds the
// README's tables to it.

import { homedir, hostname as osHostname } from "node:os";
import { join } from "node:path";
import type { LimitsConfig } from "./limits-config.js";
import { parseListenAddress } from "./listen-address.js";
import {
  type WholeNumberRange,
  oneOf,
  parseAgentSecret,
  parseBearerToken,
  parseBoolean,
  parseHostname,
  parseLabels,
  parseOllamaUrl,
  parseRegistryAddress,
  parseRegistryUrl,
  pathTo,
  seconds,
  secondsOrOff,
  share,
  wholeNumber,
} from "./parsers.js";
import { parseRoleTokens } from "./role-token.js";
import type { CommandName, ListSetting, Setting, SwitchSetting, ValueSetting } from "./setting.js";

/** A resource limit of the server: a whole number (or seconds) in a range, read into LimitsConfig. */
export interface LimitSetting<K extends string = string> extends ValueSetting<number, K> {
  readonly env: string;
  readonly commands: readonly ["serve"];
  readonly defaultValue: string;
  readonly configKey: keyof LimitsConfig;
  /** "seconds" values are given in seconds (fractions allowed) and held in milliseconds. */
  readonly unit: WholeNumberRange["unit"] | "seconds";
  readonly min: number;
  readonly max: number;
}

const INT32_MAX = 2_147_483_647;

/** The node daemon's identity file, in the data directory unless --state-file says otherwise. */
export const STATE_FILE_NAME = "agent-state.json";

function limit<const K extends string>(
  row: Pick<LimitSetting<K>, "key" | "env" | "flag" | "configKey" | "unit" | "defaultValue" | "min" | "max"> & { readonly help: string },
): LimitSetting<K> {
  const { unit } = row;
  return {
    ...row,
    kind: "value",
    commands: ["serve"],
    argument: unit === "seconds" ? "seconds" : unit === "bytes" ? "bytes" : "n",
    parse: unit === "seconds" ? seconds(row.max) : wholeNumber({ ...row, unit }),
  };
}

// Rows in the order --help lists them. The limits' defaults leave room for the benchmark's fleets (10 000
// agents, up to 1 000 streams on one connection, a storm of 10 000 Registers as fast as the server takes
// them), while still bounding what one client can hold: 20 000 streams of ~20 KB (grpc-js) is ~400 MB at worst.
export const SETTINGS = {
  heartbeatInterval: {
    key: "heartbeatInterval",
    env: "HEARTBEAT_INTERVAL",
    flag: "--heartbeat-interval",
    kind: "value",
    argument: "seconds",
    defaultValue: "30",
    parse: seconds(),
    commands: ["serve"],
    help: "seconds between beats, told to agents",
  },
  agentTimeout: {
    key: "agentTimeout",
    env: "AGENT_TIMEOUT",
    flag: "--agent-timeout",
    kind: "value",
    argument: "seconds",
    defaultValue: "60",
    parse: seconds(),
    commands: ["serve"],
    help: "seconds without a beat before an agent is OFFLINE",
  },
  grpcListen: {
    key: "grpcListen",
    env: "REGISTRY_GRPC_LISTEN",
    flag: "--grpc-listen",
    kind: "value",
    argument: "host:port",
    defaultValue: "127.0.0.1:50051",
    parse: parseListenAddress,
    commands: ["serve"],
    help: "gRPC listener address",
  },
  httpListen: {
    key: "httpListen",
    env: "REGISTRY_HTTP_LISTEN",
    flag: "--http-listen",
    kind: "value",
    argument: "host:port",
    defaultValue: "127.0.0.1:50052",
    parse: parseListenAddress,
    commands: ["serve"],
    help: "HTTP listener address (Connect, gRPC-Web)",
  },
  dataDir: {
    key: "dataDir",
    env: "REGISTRY_DATA_DIR",
    flag: "--data-dir",
    kind: "value",
    argument: "dir",
    defaultValue: () => join(homedir(), ".ollama-router"),
    shownDefault: "~/.ollama-router",
    parse: pathTo("directory"),
    commands: ["serve", "agent", "migrate"],
    help: {
      serve: "directory holding agents.json (or registry.db, see --store)",
      agent: "directory holding agent-state.json",
      migrate: "directory holding both stores' files (stop its server first)",
    },
  },
  store: {
    key: "store",
    env: "REGISTRY_STORE",
    flag: "--store",
    kind: "value",
    argument: "kind",
    defaultValue: "json",
    parse: oneOf(["json", "sqlite"]),
    commands: ["serve"],
    help: "where agents are kept: json ($REGISTRY_DATA_DIR/agents.json) or sqlite ($REGISTRY_DATA_DIR/registry.db)",
  },
  offlineGuard: {
    key: "offlineGuard",
    env: "REGISTRY_OFFLINE_GUARD",
    flag: "--offline-guard",
    kind: "value",
    argument: "share",
    defaultValue: "0.5",
    parse: share,
    commands: ["serve"],
    help: "share of the fleet timing out within one timeout that holds timeouts (a network fault of the registry is likelier); 0 turns the guard off",
  },
  offlineGuardMinFleet: {
    key: "offlineGuardMinFleet",
    env: "REGISTRY_OFFLINE_GUARD_MIN_FLEET",
    flag: "--offline-guard-min-fleet",
    kind: "value",
    argument: "n",
    defaultValue: "10",
    parse: wholeNumber({ min: 1, max: INT32_MAX, unit: "count", defaultValue: "10" }),
    commands: ["serve"],
    help: "the offline guard acts only on fleets of at least this many ONLINE nodes",
  },
  offlineGuardMaxHold: {
    key: "offlineGuardMaxHold",
    env: "REGISTRY_OFFLINE_GUARD_MAX_HOLD",
    flag: "--offline-guard-max-hold",
    kind: "value",
    argument: "seconds",
    defaultValue: "300",
    parse: seconds(),
    commands: ["serve"],
    help: "seconds an offline-guard hold lasts at most; nodes still silent then turn OFFLINE",
  },
  maxBeatsPerSecond: {
    key: "maxBeatsPerSecond",
    env: "REGISTRY_MAX_BEATS_PER_SECOND",
    flag: "--max-beats-per-second",
    kind: "value",
    argument: "n",
    defaultValue: "0",
    parse: wholeNumber({ min: 0, max: INT32_MAX, unit: "per second", defaultValue: "0" }),
    commands: ["serve"],
    help: "cap on fleet-wide beats per second: past it, the interval told to agents (and their timeout) grows to fleet / cap; 0 is no cap",
  },
  probeInterval: {
    key: "probeInterval",
    env: "REGISTRY_PROBE_INTERVAL",
    flag: "--probe-interval",
    kind: "value",
    argument: "seconds",
    defaultValue: "0",
    parse: secondsOrOff(),
    commands: ["serve"],
    help: "seconds between reachability probes (GET /api/version) of each ONLINE node's Ollama; 0 is off",
  },
  migrateFrom: {
    key: "from",
    flag: "--from",
    kind: "value",
    argument: "kind",
    parse: oneOf(["json", "sqlite"]),
    commands: ["migrate"],
    help: "the store to copy every agent from: json or sqlite (required)",
  },
  migrateTo: {
    key: "to",
    flag: "--to",
    kind: "value",
    argument: "kind",
    parse: oneOf(["json", "sqlite"]),
    commands: ["migrate"],
    help: "the store to copy them to: json or sqlite (required)",
  },
  force: {
    key: "force",
    flag: "--force",
    kind: "switch",
    parse: parseBoolean,
    commands: ["migrate"],
    help: "replace what the target store already holds",
  },
  tokens: {
    key: "token",
    env: "REGISTRY_TOKENS",
    flag: "--token",
    kind: "list",
    argument: "role:token",
    parse: parseRoleTokens,
    commands: ["serve"],
    help: "a bearer token and its role (agent, reader or admin); repeat for more (the variable takes them comma-separated)",
  },
  tokenFile: {
    key: "tokenFile",
    env: "REGISTRY_TOKEN_FILE",
    flag: "--token-file",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["serve"],
    help: "a file of role:token lines (# comments), read again on SIGHUP",
  },
  tlsCert: {
    key: "tlsCert",
    env: "REGISTRY_TLS_CERT",
    flag: "--tls-cert",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["serve"],
    help: "the server's TLS certificate chain (PEM), for both listeners; read again (with the key and client CA) on SIGHUP",
  },
  tlsKey: {
    key: "tlsKey",
    env: "REGISTRY_TLS_KEY",
    flag: "--tls-key",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["serve"],
    help: "the private key of --tls-cert (PEM)",
  },
  tlsClientCa: {
    key: "tlsClientCa",
    env: "REGISTRY_TLS_CLIENT_CA",
    flag: "--tls-client-ca",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["serve"],
    help: "require client certificates signed by this CA (PEM): mutual TLS",
  },
  insecureAllowUnauthenticated: {
    key: "insecureAllowUnauthenticated",
    env: "REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED",
    flag: "--insecure-allow-unauthenticated",
    kind: "switch",
    parse: parseBoolean,
    commands: ["serve"],
    help: "allow listening beyond loopback with authentication off (warned at every start)",
  },
  maxAgents: limit({
    key: "maxAgents",
    env: "REGISTRY_MAX_AGENTS",
    flag: "--max-agents",
    configKey: "maxAgents",
    unit: "count",
    defaultValue: "100000",
    min: 1,
    max: INT32_MAX,
    help: "agents the registry holds at most; a Register of a new id past it is refused (known ids still re-register)",
  }),
  maxMessageBytes: limit({
    key: "maxMessageBytes",
    env: "REGISTRY_MAX_MESSAGE_BYTES",
    flag: "--max-message-bytes",
    configKey: "maxMessageBytes",
    unit: "bytes",
    defaultValue: "1048576",
    min: 1024,
    max: INT32_MAX,
    help: "largest request message read, in bytes (the largest valid Register is ~21 KB in ASCII)",
  }),
  maxStreamsPerConnection: limit({
    key: "maxStreamsPerConnection",
    env: "REGISTRY_MAX_STREAMS_PER_CONNECTION",
    flag: "--max-streams-per-connection",
    configKey: "maxStreamsPerConnection",
    unit: "count",
    defaultValue: "10000",
    min: 1,
    max: INT32_MAX,
    help: "HTTP/2 streams one connection may have open at once (both listeners)",
  }),
  maxStreams: limit({
    key: "maxStreams",
    env: "REGISTRY_MAX_STREAMS",
    flag: "--max-streams",
    configKey: "maxStreams",
    unit: "count",
    defaultValue: "20000",
    min: 1,
    max: INT32_MAX,
    help: "Heartbeat and WatchAgents streams open at once, both listeners together",
  }),
  maxWatchers: limit({
    key: "maxWatchers",
    env: "REGISTRY_MAX_WATCHERS",
    flag: "--max-watchers",
    configKey: "maxWatchers",
    unit: "count",
    defaultValue: "1000",
    min: 1,
    max: INT32_MAX,
    help: "WatchAgents streams open at once, both listeners together",
  }),
  maxRegistrationsPerSecond: limit({
    key: "maxRegistrationsPerSecond",
    env: "REGISTRY_MAX_REGISTRATIONS_PER_SECOND",
    flag: "--max-registrations-per-second",
    configKey: "maxRegistrationsPerSecond",
    unit: "per second",
    defaultValue: "20000",
    min: 1,
    max: INT32_MAX,
    help: "Register calls per second, server-wide; bursts of up to one second's worth pass at once",
  }),
  firstBeatTimeout: limit({
    key: "firstBeatTimeout",
    env: "REGISTRY_FIRST_BEAT_TIMEOUT",
    flag: "--first-beat-timeout",
    configKey: "firstBeatTimeoutMs",
    unit: "seconds",
    defaultValue: "10",
    min: 0.001,
    max: 86_400,
    help: "seconds a new Heartbeat stream may wait before its first message",
  }),
  watchQueueLimit: limit({
    key: "watchQueueLimit",
    env: "REGISTRY_WATCH_QUEUE_LIMIT",
    flag: "--watch-queue-limit",
    configKey: "watchQueueLimit",
    unit: "count",
    defaultValue: "1024",
    min: 1,
    max: INT32_MAX,
    help: "events a watcher may fall behind before it is cut off (never fewer than the fleet's size)",
  }),
  registryAddr: {
    key: "registryAddr",
    env: "REGISTRY_ADDR",
    flag: "--registry-addr",
    kind: "value",
    argument: "host:port",
    defaultValue: "127.0.0.1:50051",
    parse: parseRegistryAddress,
    commands: ["agent"],
    help: "the registry's gRPC address",
  },
  ollamaUrl: {
    key: "ollamaUrl",
    env: "OLLAMA_URL",
    flag: "--ollama-url",
    kind: "value",
    argument: "url",
    defaultValue: "http://127.0.0.1:11434",
    parse: parseOllamaUrl,
    commands: ["agent"],
    help: "this node's Ollama (probed at <url>/api/version)",
  },
  inventoryInterval: {
    key: "inventoryInterval",
    env: "REGISTRY_INVENTORY_INTERVAL",
    flag: "--inventory-interval",
    kind: "value",
    argument: "seconds",
    defaultValue: "60",
    parse: seconds(),
    commands: ["agent"],
    help: "report GPU memory used and utilisation at most once per this many seconds (model and GPU changes at once)",
  },
  hostname: {
    key: "hostname",
    flag: "--hostname",
    kind: "value",
    argument: "name",
    defaultValue: () => osHostname(),
    shownDefault: "the OS host name",
    parse: parseHostname,
    commands: ["agent"],
    help: "the host name to register",
  },
  labels: {
    key: "label",
    flag: "--label",
    kind: "list",
    argument: "key=value",
    parse: parseLabels,
    commands: ["agent"],
    help: "a label to register; repeat for more",
  },
  stateFile: {
    key: "stateFile",
    flag: "--state-file",
    kind: "value",
    argument: "path",
    // No defaultValue: agent-config.ts puts it in the data directory.
    shownDefault: `$REGISTRY_DATA_DIR/${STATE_FILE_NAME}`,
    parse: pathTo("file"),
    commands: ["agent"],
    help: "where the node keeps its id and secret",
  },
  deregisterStateFile: {
    key: "stateFile",
    flag: "--state-file",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["deregister"],
    help: "deregister the node whose daemon keeps this state file (agent-state.json): its id and its secret",
  },
  agentSecret: {
    key: "secret",
    env: "REGISTRY_AGENT_SECRET",
    flag: "--secret",
    kind: "value",
    argument: "secret",
    parse: parseAgentSecret,
    commands: ["deregister"],
    help: "the agent's secret (from its agent-state.json), so an agent token may remove its own id; prefer the variable",
  },
  url: {
    key: "url",
    env: "REGISTRY_URL",
    flag: "--url",
    kind: "value",
    argument: "url",
    defaultValue: "http://127.0.0.1:50052",
    parse: parseRegistryUrl,
    commands: ["client"],
    help: "the registry's HTTP address",
  },
  token: {
    key: "token",
    env: "REGISTRY_TOKEN",
    flag: "--token",
    kind: "value",
    argument: "token",
    parse: parseBearerToken,
    commands: ["agent", "client"],
    help: {
      agent: "bearer token with the agent role (prefer the env variable: flags show in ps)",
      client: "bearer token (reader for list/get/watch; admin for deregister, or agent with the node's secret); prefer the env variable",
    },
  },
  tls: {
    key: "tls",
    env: "REGISTRY_TLS",
    flag: "--tls",
    kind: "switch",
    parse: parseBoolean,
    commands: ["agent"],
    help: "connect with TLS, trusting the system's CAs (implied by --ca and --cert)",
  },
  ca: {
    key: "ca",
    env: "REGISTRY_CA",
    flag: "--ca",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["agent", "client"],
    help: {
      agent: "CA certificates (PEM) to verify the registry by; turns TLS on",
      client: "CA certificates (PEM) to verify an https:// registry by",
    },
  },
  cert: {
    key: "cert",
    env: "REGISTRY_CLIENT_CERT",
    flag: "--cert",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["agent", "client"],
    help: "client certificate (PEM) for a registry that requires mutual TLS",
  },
  key: {
    key: "key",
    env: "REGISTRY_CLIENT_KEY",
    flag: "--key",
    kind: "value",
    argument: "path",
    parse: pathTo("file"),
    commands: ["agent", "client"],
    help: "the private key of --cert (PEM)",
  },
  logLevel: {
    key: "logLevel",
    env: "LOG_LEVEL",
    flag: "--log-level",
    kind: "value",
    argument: "level",
    defaultValue: "info",
    parse: oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    commands: ["serve", "agent"],
    help: "log level: fatal, error, warn, info, debug, trace or silent",
  },
  logFormat: {
    key: "logFormat",
    env: "LOG_FORMAT",
    flag: "--log-format",
    kind: "value",
    argument: "format",
    defaultValue: "json",
    parse: oneOf(["json", "pretty"]),
    commands: ["serve"],
    help: "json lines, or pretty for people",
  },
} as const satisfies Readonly<Record<string, Setting>>;

const ALL: readonly Setting[] = Object.values(SETTINGS);

/** A command's settings, in the table's order. */
export function settingsOf(command: CommandName): readonly Setting[] {
  return ALL.filter((setting) => setting.commands.includes(command));
}

export const LIMIT_SETTINGS: readonly LimitSetting[] = [
  SETTINGS.maxAgents,
  SETTINGS.maxMessageBytes,
  SETTINGS.maxStreamsPerConnection,
  SETTINGS.maxStreams,
  SETTINGS.maxWatchers,
  SETTINGS.maxRegistrationsPerSecond,
  SETTINGS.firstBeatTimeout,
  SETTINGS.watchQueueLimit,
];

/** The defaults of the durations and addresses, by variable. */
export const DEFAULTS = {
  HEARTBEAT_INTERVAL: SETTINGS.heartbeatInterval.defaultValue,
  AGENT_TIMEOUT: SETTINGS.agentTimeout.defaultValue,
  REGISTRY_GRPC_LISTEN: SETTINGS.grpcListen.defaultValue,
  REGISTRY_HTTP_LISTEN: SETTINGS.httpListen.defaultValue,
  REGISTRY_ADDR: SETTINGS.registryAddr.defaultValue,
  REGISTRY_URL: SETTINGS.url.defaultValue,
} as const;

type Row = (typeof SETTINGS)[keyof typeof SETTINGS];

type FlagValueOf<S> = S extends SwitchSetting ? boolean : S extends ListSetting<unknown> ? readonly string[] : string;

/**
 * The flags a command takes, by key, as commander collects them: a value as typed, a switch as true, a
 * repeated flag as each of its values. Absent means "not given".
 */
export type FlagsOf<C extends CommandName> = {
  [S in Row as C extends S["commands"][number] ? S["key"] : never]?: FlagValueOf<S> | undefined;
};
