// The node daemon's configuration (`agent-registry agent`): where the registry and Ollama are, how the node
// registers and logs, as one validated AgentConfig or a ConfigError naming the variable or flag.

import { join, resolve } from "node:path";
import { type ClientSecurity, loadClientSecurity } from "./client-security-config.js";
import type { LogLevel } from "./log-config.js";
import { formatAddress } from "./listen-address.js";
import { settingReader } from "./setting-reader.js";
import { type FlagsOf, SETTINGS, STATE_FILE_NAME } from "./settings.js";

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
  readonly logLevel: LogLevel;
  /** Fast-moving inventory figures are reported at most once per this many ms. */
  readonly inventoryIntervalMs: number;
}

/** The flags of `agent` as the CLI parsed them (unvalidated); absent means "not given". */
export type AgentFlags = FlagsOf<"agent">;

export const AGENT_DEFAULTS = {
  OLLAMA_URL: SETTINGS.ollamaUrl.defaultValue,
  STATE_FILE_NAME,
} as const;

export function loadAgentConfig(env: NodeJS.ProcessEnv, flags: AgentFlags = {}): AgentConfig {
  const read = settingReader(env, flags);
  const registry = read.value(SETTINGS.registryAddr).value;
  const ollama = read.value(SETTINGS.ollamaUrl).value;
  const hostname = read.value(SETTINGS.hostname).value;
  const labels = read.list(SETTINGS.labels);
  const dataDir = read.value(SETTINGS.dataDir).value;
  const stateFile = resolve(read.value(SETTINGS.stateFile)?.value ?? join(dataDir, AGENT_DEFAULTS.STATE_FILE_NAME));
  const credentials = loadClientSecurity(env, flags);
  const tlsOn = credentials.tls !== undefined || read.isOn(SETTINGS.tls);
  const security = tlsOn && credentials.tls === undefined ? { ...credentials, tls: { caFile: undefined, certFile: undefined, keyFile: undefined } } : credentials;
  const logLevel = read.value(SETTINGS.logLevel).value;
  const inventoryIntervalMs = read.value(SETTINGS.inventoryInterval).value;
  return { registryAddress: formatAddress(registry), ...ollama, hostname, labels, stateFile, security, logLevel, inventoryIntervalMs };
}
