// Configuration: environment variables and command-line flags (flags win) become one validated, typed
// Config, or a ConfigError whose message names the variable or flag and what it accepts.

import { isIP } from "node:net";
import { homedir, hostname as osHostname } from "node:os";
import { join, resolve } from "node:path";
import { type ClientSecurity, type ClientSecurityFlags, firstTlsSetting, loadClientSecurity } from "./client-security-config.js";
import { ConfigError } from "./config-error.js";
import { DEFAULT_LIMITS, type LimitsConfig, type LimitsFlags, loadLimitsConfig } from "./limits-config.js";
import { parseRegistration, unmapIPv4 } from "../registry/registration.js";
import { RegistryError } from "../registry/registry-error.js";
import { NO_SECURITY, type SecurityConfig, type SecurityFlags, loadSecurityConfig } from "./security-config.js";

export { ConfigError } from "./config-error.js";
export { type ClientSecurity, type ClientSecurityFlags, type ClientTlsFiles } from "./client-security-config.js";
export { DEFAULT_LIMITS, LIMIT_SETTINGS, type LimitSetting, type LimitsConfig, type LimitsFlags, loadLimitsConfig } from "./limits-config.js";
export {
  MIN_TOKEN_LENGTH,
  NO_SECURITY,
  ROLES,
  type Role,
  type RoleToken,
  type SecurityConfig,
  type SecurityFlags,
  type TlsFiles,
  authenticationEnabled,
  checkUnique,
  isRole,
  loadSecurityConfig,
  parseRoleToken,
  parseTokenLines,
  parseTokenList,
} from "./security-config.js";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServerConfig {
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  readonly grpcListen: ListenAddress;
  readonly httpListen: ListenAddress;
  readonly dataDir: string;
  readonly security: SecurityConfig;
  readonly limits: LimitsConfig;
}

/** Flag values as the CLI parsed them (strings, unvalidated); absent means "not given". */
export interface ServerFlags {
  heartbeatInterval?: string | undefined;
  agentTimeout?: string | undefined;
  grpcListen?: string | undefined;
  httpListen?: string | undefined;
  dataDir?: string | undefined;
  security?: SecurityFlags;
  limits?: LimitsFlags;
}

/** A ServerConfig's optional parts at their defaults: no authentication or TLS, default limits. */
export const SERVER_DEFAULTS = { security: NO_SECURITY, limits: DEFAULT_LIMITS } as const;

export const DEFAULTS = {
  HEARTBEAT_INTERVAL: "30",
  AGENT_TIMEOUT: "60",
  REGISTRY_GRPC_LISTEN: "127.0.0.1:50051",
  REGISTRY_HTTP_LISTEN: "127.0.0.1:50052",
  REGISTRY_ADDR: "127.0.0.1:50051",
  REGISTRY_URL: "http://127.0.0.1:50052",
} as const;

/** One day: far beyond any sane interval, and within what a timer can wait. */
const MAX_SECONDS = 86_400;

interface Setting {
  /** What to name in an error: the flag if it was given, else the variable. */
  readonly name: string;
  readonly value: string;
}

function setting(env: NodeJS.ProcessEnv, variable: string, flag: string, flagValue: string | undefined): Setting | undefined {
  if (flagValue !== undefined) return { name: flag, value: flagValue };
  const value = env[variable];
  return value === undefined || value === "" ? undefined : { name: variable, value };
}

export function loadServerConfig(env: NodeJS.ProcessEnv, flags: ServerFlags = {}): ServerConfig {
  const interval = setting(env, "HEARTBEAT_INTERVAL", "--heartbeat-interval", flags.heartbeatInterval) ?? {
    name: "HEARTBEAT_INTERVAL",
    value: DEFAULTS.HEARTBEAT_INTERVAL,
  };
  const timeout = setting(env, "AGENT_TIMEOUT", "--agent-timeout", flags.agentTimeout) ?? {
    name: "AGENT_TIMEOUT",
    value: DEFAULTS.AGENT_TIMEOUT,
  };
  const heartbeatIntervalMs = parseSeconds(interval);
  const agentTimeoutMs = parseSeconds(timeout);
  if (agentTimeoutMs <= heartbeatIntervalMs) {
    throw new ConfigError(
      `${timeout.name} (${timeout.value} s) must be greater than ${interval.name} (${interval.value} s), so that one missed beat never marks a node offline; the defaults are 60 and 30`,
    );
  }
  const grpcListen = parseListenAddress(
    setting(env, "REGISTRY_GRPC_LISTEN", "--grpc-listen", flags.grpcListen) ?? {
      name: "REGISTRY_GRPC_LISTEN",
      value: DEFAULTS.REGISTRY_GRPC_LISTEN,
    },
  );
  const httpListen = parseListenAddress(
    setting(env, "REGISTRY_HTTP_LISTEN", "--http-listen", flags.httpListen) ?? {
      name: "REGISTRY_HTTP_LISTEN",
      value: DEFAULTS.REGISTRY_HTTP_LISTEN,
    },
  );
  const dataDir = setting(env, "REGISTRY_DATA_DIR", "--data-dir", flags.dataDir)?.value ?? join(homedir(), ".ollama-router");
  return {
    heartbeatIntervalMs,
    agentTimeoutMs,
    grpcListen,
    httpListen,
    dataDir,
    security: loadSecurityConfig(env, flags.security),
    limits: loadLimitsConfig(env, flags.limits),
  };
}

function parseSeconds({ name, value }: Setting): number {
  const seconds = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  // Checked after rounding to whole milliseconds: 0.0001 s would become 0 ms, and the registry divides by
  // the interval.
  const ms = Math.round(seconds * 1000);
  if (!(ms >= 1 && seconds <= MAX_SECONDS)) {
    throw new ConfigError(
      `${name} must be a number of seconds from 0.001 to ${MAX_SECONDS} (fractions allowed, e.g. 0.5), got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

/** `host:port` or `[v6]:port`; port 0 picks a free port. The host is required: no implicit 0.0.0.0. */
export function parseListenAddress({ name, value }: Setting): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new ConfigError(
      `${name} must be host:port, e.g. 127.0.0.1:50051 or [::1]:50051 (port 0 picks a free one), got ${JSON.stringify(value)}`,
    );
  }
  return { host: match[1] ?? match[2] ?? "", port };
}

export function formatAddress({ host, port }: ListenAddress): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface ClientConfig {
  /** The registry's HTTP listener (Connect), without a trailing slash, e.g. "http://127.0.0.1:50052". */
  readonly url: string;
  /** Token and TLS files; TLS is on when the URL is https://. */
  readonly security: ClientSecurity;
}

/** Flag values of the client commands (list, get, watch, deregister) as the CLI parsed them. */
export interface ClientFlags extends ClientSecurityFlags {
  url?: string | undefined;
}

export function loadClientConfig(env: NodeJS.ProcessEnv, flags: ClientFlags = {}): ClientConfig {
  const { name, value } = setting(env, "REGISTRY_URL", "--url", flags.url) ?? {
    name: "REGISTRY_URL",
    value: DEFAULTS.REGISTRY_URL,
  };
  const url = URL.canParse(value.trim()) ? new URL(value.trim()) : undefined;
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
    throw new ConfigError(
      `${name} must be the registry's HTTP address as an http:// or https:// URL, e.g. ${DEFAULTS.REGISTRY_URL}, got ${JSON.stringify(value)}`,
    );
  }
  const security = loadClientSecurity(env, flags);
  const tlsSetting = firstTlsSetting(env, flags);
  if (tlsSetting !== undefined && url.protocol !== "https:") {
    throw new ConfigError(`${tlsSetting} is for TLS: give the registry's URL as https://, got ${JSON.stringify(url.href)} (${name})`);
  }
  // Connect appends "/registry.v1.AgentRegistry/<Method>" to the base URL; a path prefix (a proxy) is kept.
  return { url: url.href.replace(/\/+$/, ""), security };
}

// The node daemon, `agent-registry agent`: where the registry and Ollama are, and how the node registers.

export interface AgentConfig {
  /** host:port of the registry's gRPC listener. */
  readonly registryAddress: string;
  /** Ollama's base URL; the daemon probes `<url>/api/version`. */
  readonly ollamaUrl: string;
  readonly hostname: string;
  /**
   * The address registered for Ollama: the OLLAMA_URL host when it is an IP address other than loopback or
   * 0.0.0.0/::. Otherwise empty, and the server uses the address the daemon connects from: Ollama on
   * 127.0.0.1 is reached from other hosts through the node's own address, which is what the server sees.
   */
  readonly ipAddress: string;
  /** Ollama's port: the OLLAMA_URL port, or the scheme's default (80, 443) as for any URL. */
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Where the node keeps its id: `$REGISTRY_DATA_DIR/agent-state.json` unless --state-file says otherwise. */
  readonly stateFile: string;
  /** Token and TLS files; TLS is on when `security.tls` is set (--tls, --ca or --cert). */
  readonly security: ClientSecurity;
}

/** Flag values as the CLI parsed them (unvalidated); absent means "not given". */
export interface AgentFlags {
  registryAddr?: string | undefined;
  ollamaUrl?: string | undefined;
  hostname?: string | undefined;
  /** Each `--label key=value`, in order. */
  label?: readonly string[] | undefined;
  stateFile?: string | undefined;
  dataDir?: string | undefined;
  token?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** TLS with the system's CAs (implied by --ca and --cert). */
  tls?: boolean | undefined;
}

export const AGENT_DEFAULTS = {
  OLLAMA_URL: "http://127.0.0.1:11434",
  STATE_FILE_NAME: "agent-state.json",
} as const;

export function loadAgentConfig(env: NodeJS.ProcessEnv, flags: AgentFlags = {}): AgentConfig {
  const addr = setting(env, "REGISTRY_ADDR", "--registry-addr", flags.registryAddr) ?? {
    name: "REGISTRY_ADDR",
    value: DEFAULTS.REGISTRY_ADDR,
  };
  const registry = parseRegistryAddress(addr);
  const ollama = parseOllamaUrl(
    setting(env, "OLLAMA_URL", "--ollama-url", flags.ollamaUrl) ?? { name: "OLLAMA_URL", value: AGENT_DEFAULTS.OLLAMA_URL },
  );
  const hostname = parseAgentHostname(flags.hostname);
  const labels = parseLabelFlags(flags.label ?? []);
  const dataDir = setting(env, "REGISTRY_DATA_DIR", "--data-dir", flags.dataDir)?.value ?? join(homedir(), ".ollama-router");
  const stateFile = resolve(flags.stateFile ?? join(dataDir, AGENT_DEFAULTS.STATE_FILE_NAME));
  const credentials = loadClientSecurity(env, flags);
  const tlsOn = credentials.tls !== undefined || (flags.tls ?? parseTlsSwitch(env));
  const security = tlsOn && credentials.tls === undefined ? { ...credentials, tls: { caFile: undefined, certFile: undefined, keyFile: undefined } } : credentials;
  return { registryAddress: formatAddress(registry), ...ollama, hostname, labels, stateFile, security };
}

function parseTlsSwitch(env: NodeJS.ProcessEnv): boolean {
  const value = env["REGISTRY_TLS"] ?? "";
  if (value === "" || value === "0" || value === "false") return false;
  if (value === "1" || value === "true") return true;
  throw new ConfigError(`REGISTRY_TLS must be true or false (or 1 or 0), got ${JSON.stringify(value)}`);
}

function parseRegistryAddress(addr: Setting): ListenAddress {
  const problem = `${addr.name} must be the registry's gRPC address as host:port, e.g. 127.0.0.1:50051 or [::1]:50051, got ${JSON.stringify(addr.value)}`;
  let address: ListenAddress;
  try {
    address = parseListenAddress(addr);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(problem);
    throw error;
  }
  if (address.port === 0) throw new ConfigError(problem);
  return address;
}

function parseOllamaUrl({ name, value }: Setting): { ollamaUrl: string; ipAddress: string; port: number } {
  const url = URL.canParse(value.trim()) ? new URL(value.trim()) : undefined;
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
    throw new ConfigError(
      `${name} must be Ollama's http:// or https:// URL, e.g. http://127.0.0.1:11434, got ${JSON.stringify(value)}`,
    );
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  return { ollamaUrl: url.href, ipAddress: advertisedAddress(host), port };
}

/** The OLLAMA_URL host as the address to register, or "" (the server then uses the daemon's own address). */
function advertisedAddress(host: string): string {
  const unmapped = unmapIPv4(host);
  const version = isIP(unmapped);
  if (version === 0) return ""; // a name such as localhost: the server sees the daemon's address
  const loopback = version === 4 ? unmapped.startsWith("127.") : unmapped === "::1";
  const unspecified = unmapped === "0.0.0.0" || unmapped === "::";
  return loopback || unspecified ? "" : unmapped;
}

function parseAgentHostname(flag: string | undefined): string {
  const hostname = flag ?? osHostname();
  try {
    parseRegistration({ agentId: "", hostname, ipAddress: "", port: 0, ollamaVersion: "", labels: {} });
  } catch (error) {
    if (!(error instanceof RegistryError)) throw error;
    throw new ConfigError(
      flag === undefined
        ? `this machine's host name ${JSON.stringify(hostname)} cannot be registered (${error.message}); give one with --hostname`
        : `--hostname: ${error.message.replace(/^hostname: /, "")}`,
    );
  }
  return hostname;
}

function parseLabelFlags(flags: readonly string[]): Readonly<Record<string, string>> {
  const labels: Record<string, string> = {};
  for (const flag of flags) {
    const equals = flag.indexOf("=");
    if (equals <= 0) {
      throw new ConfigError(`--label must be key=value, e.g. --label gpu=a100, got ${JSON.stringify(flag)}`);
    }
    const key = flag.slice(0, equals);
    if (Object.hasOwn(labels, key)) throw new ConfigError(`--label ${key} is given more than once; give each key once`);
    labels[key] = flag.slice(equals + 1);
  }
  try {
    parseRegistration({ agentId: "", hostname: "node", ipAddress: "", port: 0, ollamaVersion: "", labels });
  } catch (error) {
    if (!(error instanceof RegistryError)) throw error;
    throw new ConfigError(`--label: ${error.message.replace(/^labels: /, "")}`);
  }
  return labels;
}
