// Resource limits of the server (message size, streams, registration rate, watchers, idle streams): env
// and flags become one validated LimitsConfig, or a ConfigError naming the variable or flag. Read by
// config/index.ts; the `serve` flags are made from LIMIT_SETTINGS by cli/limits-options.ts.

import { ConfigError } from "./config-error.js";

export interface LimitsConfig {
  /** Largest request message the server reads, in bytes (gRPC and Connect alike). */
  readonly maxMessageBytes: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS of both listeners: streams one connection may have open. */
  readonly maxStreamsPerConnection: number;
  /** Heartbeat and WatchAgents streams open at once, over both listeners together. */
  readonly maxStreams: number;
  /** WatchAgents streams open at once, over both listeners together. */
  readonly maxWatchers: number;
  /** Register calls per second, server-wide (a token bucket holding one second's worth). */
  readonly maxRegistrationsPerSecond: number;
  /** How long a new Heartbeat stream may stay silent before its first message. */
  readonly firstBeatTimeoutMs: number;
  /** Events a watcher may fall behind before it is cut off. */
  readonly watchQueueLimit: number;
}

/** Flag values as the CLI parsed them (strings, unvalidated); absent means "not given". */
export interface LimitsFlags {
  maxMessageBytes?: string | undefined;
  maxStreamsPerConnection?: string | undefined;
  maxStreams?: string | undefined;
  maxWatchers?: string | undefined;
  maxRegistrationsPerSecond?: string | undefined;
  firstBeatTimeout?: string | undefined;
  watchQueueLimit?: string | undefined;
}

export interface LimitSetting {
  readonly env: string;
  readonly flag: `--${string}`;
  /** The LimitsFlags key (commander's name for the flag). */
  readonly flagKey: keyof LimitsFlags;
  readonly configKey: keyof LimitsConfig;
  /** "seconds" values are given in seconds (fractions allowed) and held in milliseconds. */
  readonly unit: "count" | "bytes" | "per second" | "seconds";
  readonly defaultValue: string;
  readonly min: number;
  readonly max: number;
  readonly help: string;
}

const INT32_MAX = 2_147_483_647;

// The defaults leave room for the benchmark's fleets (10 000 agents, up to 1 000 streams on one
// connection, a storm of 10 000 Registers as fast as the server takes them), while still bounding what one
// client can hold: 20 000 streams of ~20 KB (grpc-js) is ~400 MB at worst.
export const LIMIT_SETTINGS: readonly LimitSetting[] = [
  {
    env: "REGISTRY_MAX_MESSAGE_BYTES",
    flag: "--max-message-bytes",
    flagKey: "maxMessageBytes",
    configKey: "maxMessageBytes",
    unit: "bytes",
    defaultValue: "1048576",
    min: 1024,
    max: INT32_MAX,
    help: "largest request message read, in bytes (the largest valid Register is ~21 KB in ASCII)",
  },
  {
    env: "REGISTRY_MAX_STREAMS_PER_CONNECTION",
    flag: "--max-streams-per-connection",
    flagKey: "maxStreamsPerConnection",
    configKey: "maxStreamsPerConnection",
    unit: "count",
    defaultValue: "10000",
    min: 1,
    max: INT32_MAX,
    help: "HTTP/2 streams one connection may have open at once (both listeners)",
  },
  {
    env: "REGISTRY_MAX_STREAMS",
    flag: "--max-streams",
    flagKey: "maxStreams",
    configKey: "maxStreams",
    unit: "count",
    defaultValue: "20000",
    min: 1,
    max: INT32_MAX,
    help: "Heartbeat and WatchAgents streams open at once, both listeners together",
  },
  {
    env: "REGISTRY_MAX_WATCHERS",
    flag: "--max-watchers",
    flagKey: "maxWatchers",
    configKey: "maxWatchers",
    unit: "count",
    defaultValue: "1000",
    min: 1,
    max: INT32_MAX,
    help: "WatchAgents streams open at once, both listeners together",
  },
  {
    env: "REGISTRY_MAX_REGISTRATIONS_PER_SECOND",
    flag: "--max-registrations-per-second",
    flagKey: "maxRegistrationsPerSecond",
    configKey: "maxRegistrationsPerSecond",
    unit: "per second",
    defaultValue: "20000",
    min: 1,
    max: INT32_MAX,
    help: "Register calls per second, server-wide; bursts of up to one second's worth pass at once",
  },
  {
    env: "REGISTRY_FIRST_BEAT_TIMEOUT",
    flag: "--first-beat-timeout",
    flagKey: "firstBeatTimeout",
    configKey: "firstBeatTimeoutMs",
    unit: "seconds",
    defaultValue: "10",
    min: 0.001,
    max: 86_400,
    help: "seconds a new Heartbeat stream may wait before its first message",
  },
  {
    env: "REGISTRY_WATCH_QUEUE_LIMIT",
    flag: "--watch-queue-limit",
    flagKey: "watchQueueLimit",
    configKey: "watchQueueLimit",
    unit: "count",
    defaultValue: "1024",
    min: 1,
    max: INT32_MAX,
    help: "events a watcher may fall behind before it is cut off",
  },
];

export function loadLimitsConfig(env: NodeJS.ProcessEnv, flags: LimitsFlags = {}): LimitsConfig {
  const value = (key: keyof LimitsConfig): number => {
    const setting = LIMIT_SETTINGS.find((candidate) => candidate.configKey === key) as LimitSetting;
    const flagValue = flags[setting.flagKey];
    const envValue = env[setting.env];
    if (flagValue !== undefined) return parseLimit(setting, setting.flag, flagValue);
    if (envValue !== undefined && envValue !== "") return parseLimit(setting, setting.env, envValue);
    return parseLimit(setting, setting.env, setting.defaultValue);
  };
  return {
    maxMessageBytes: value("maxMessageBytes"),
    maxStreamsPerConnection: value("maxStreamsPerConnection"),
    maxStreams: value("maxStreams"),
    maxWatchers: value("maxWatchers"),
    maxRegistrationsPerSecond: value("maxRegistrationsPerSecond"),
    firstBeatTimeoutMs: value("firstBeatTimeoutMs"),
    watchQueueLimit: value("watchQueueLimit"),
  };
}

function parseLimit(setting: LimitSetting, name: string, value: string): number {
  if (setting.unit === "seconds") {
    const seconds = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
    const ms = Math.round(seconds * 1000);
    if (!(ms >= 1 && seconds <= setting.max)) {
      throw new ConfigError(
        `${name} must be a number of seconds from ${setting.min} to ${setting.max} (fractions allowed, e.g. 0.5), got ${JSON.stringify(value)}`,
      );
    }
    return ms;
  }
  const number = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!(number >= setting.min && number <= setting.max)) {
    const what = setting.unit === "bytes" ? "a number of bytes" : setting.unit === "per second" ? "a whole number per second" : "a whole number";
    throw new ConfigError(
      `${name} must be ${what} from ${setting.min} to ${setting.max} (default ${setting.defaultValue}), got ${JSON.stringify(value)}`,
    );
  }
  return number;
}

export const DEFAULT_LIMITS: LimitsConfig = loadLimitsConfig({});
