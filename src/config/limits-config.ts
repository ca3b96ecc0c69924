// Resource limits of the server (agents held, message size, streams, registration rate, watchers, idle streams): their
// settings (the limit rows of settings.ts) become one validated LimitsConfig, or a ConfigError naming the
// variable or flag.

import { settingReader } from "./setting-reader.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

export interface LimitsConfig {
  /** Agents the registry holds at most: a Register of a new id past it is refused. */
  readonly maxAgents: number;
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

export function loadLimitsConfig(env: NodeJS.ProcessEnv, flags: FlagsOf<"serve"> = {}): LimitsConfig {
  const read = settingReader(env, flags);
  return {
    maxAgents: read.value(SETTINGS.maxAgents).value,
    maxMessageBytes: read.value(SETTINGS.maxMessageBytes).value,
    maxStreamsPerConnection: read.value(SETTINGS.maxStreamsPerConnection).value,
    maxStreams: read.value(SETTINGS.maxStreams).value,
    maxWatchers: read.value(SETTINGS.maxWatchers).value,
    maxRegistrationsPerSecond: read.value(SETTINGS.maxRegistrationsPerSecond).value,
    firstBeatTimeoutMs: read.value(SETTINGS.firstBeatTimeout).value,
    watchQueueLimit: read.value(SETTINGS.watchQueueLimit).value,
  };
}

export const DEFAULT_LIMITS: LimitsConfig = loadLimitsConfig({});
