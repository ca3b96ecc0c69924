// `agent-registry serve`'s configuration: its settings (flags win over the environment) become one
// validated, typed ServerConfig, or a ConfigError whose message names the variable or flag and what it
// accepts.

import { ConfigError } from "./config-error.js";
import { DEFAULT_LIMITS, type LimitsConfig, loadLimitsConfig } from "./limits-config.js";
import type { ListenAddress } from "./listen-address.js";
import { NO_SECURITY, type SecurityConfig, loadSecurityConfig } from "./security-config.js";
import { settingReader } from "./setting-reader.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

/** Where the agents are kept: `json` is `$REGISTRY_DATA_DIR/agents.json`, `sqlite` `$REGISTRY_DATA_DIR/registry.db`. */
export type StoreKind = "json" | "sqlite";

export interface ServerConfig {
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  readonly grpcListen: ListenAddress;
  readonly httpListen: ListenAddress;
  readonly dataDir: string;
  readonly store: StoreKind;
  readonly security: SecurityConfig;
  readonly limits: LimitsConfig;
}

/** The flags of `serve` as the CLI parsed them (unvalidated); absent means "not given". */
export type ServerFlags = FlagsOf<"serve">;

/** A ServerConfig's optional parts at their defaults: the json store, no authentication or TLS, default limits. */
export const SERVER_DEFAULTS = { store: SETTINGS.store.defaultValue, security: NO_SECURITY, limits: DEFAULT_LIMITS } as const;

export function loadServerConfig(env: NodeJS.ProcessEnv, flags: ServerFlags = {}): ServerConfig {
  const read = settingReader(env, flags);
  const interval = read.value(SETTINGS.heartbeatInterval);
  const timeout = read.value(SETTINGS.agentTimeout);
  if (timeout.value <= interval.value) {
    throw new ConfigError(
      `${timeout.name} (${timeout.text} s) must be greater than ${interval.name} (${interval.text} s), so that one missed beat never ` +
        `marks a node offline; the defaults are ${SETTINGS.agentTimeout.defaultValue} and ${SETTINGS.heartbeatInterval.defaultValue}`,
    );
  }
  return {
    heartbeatIntervalMs: interval.value,
    agentTimeoutMs: timeout.value,
    grpcListen: read.value(SETTINGS.grpcListen).value,
    httpListen: read.value(SETTINGS.httpListen).value,
    dataDir: read.value(SETTINGS.dataDir).value,
    store: read.value(SETTINGS.store).value,
    security: loadSecurityConfig(env, flags),
    limits: loadLimitsConfig(env, flags),
  };
}
