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

/** How liveness is judged beyond the interval and timeout: the offline guard and the beats-per-second cap. */
export interface LivenessConfig {
  /** The offline guard: share 0 turns it off. */
  readonly offlineGuard: { readonly share: number; readonly minFleet: number; readonly maxHoldMs: number };
  /** Fleet-wide beats per second at most (0: no cap). */
  readonly maxBeatsPerSecond: number;
}

export interface ServerConfig {
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  readonly grpcListen: ListenAddress;
  readonly httpListen: ListenAddress;
  readonly dataDir: string;
  readonly store: StoreKind;
  readonly liveness: LivenessConfig;
  readonly security: SecurityConfig;
  readonly limits: LimitsConfig;
  /** Milliseconds between reachability probes of each ONLINE node (0 or absent: off). */
  readonly probeIntervalMs?: number;
}

/** The flags of `serve` as the CLI parsed them (unvalidated); absent means "not given". */
export type ServerFlags = FlagsOf<"serve">;

/** A ServerConfig's optional parts at their defaults: the json store, no authentication or TLS, default limits, no probe. */
export const SERVER_DEFAULTS = {
  store: SETTINGS.store.defaultValue,
  liveness: loadLivenessConfig(settingReader({}, {})),
  security: NO_SECURITY,
  limits: DEFAULT_LIMITS,
  probeIntervalMs: 0,
} as const;

function loadLivenessConfig(read: ReturnType<typeof settingReader>): LivenessConfig {
  return {
    offlineGuard: {
      share: read.value(SETTINGS.offlineGuard).value,
      minFleet: read.value(SETTINGS.offlineGuardMinFleet).value,
      maxHoldMs: read.value(SETTINGS.offlineGuardMaxHold).value,
    },
    maxBeatsPerSecond: read.value(SETTINGS.maxBeatsPerSecond).value,
  };
}

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
    liveness: loadLivenessConfig(read),
    security: loadSecurityConfig(env, flags),
    limits: loadLimitsConfig(env, flags),
    probeIntervalMs: read.value(SETTINGS.probeInterval).value,
  };
}
