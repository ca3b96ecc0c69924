// How the server and the node daemon log: the level (both) and the format (the server), from LOG_LEVEL and
// LOG_FORMAT or their flags.

import { ConfigError } from "./config-error.js";
import { settingReader } from "./setting-reader.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

/** pino's levels. */
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export type LogFormat = "json" | "pretty";

export interface LogConfig {
  readonly level: LogLevel;
  /** JSON lines, or pino-pretty's lines for people. */
  readonly format: LogFormat;
}

export function loadLogConfig(env: NodeJS.ProcessEnv, flags: Pick<FlagsOf<"serve">, "logLevel" | "logFormat"> = {}): LogConfig {
  const read = settingReader(env, flags);
  return { level: read.value(SETTINGS.logLevel).value, format: read.value(SETTINGS.logFormat).value };
}

/** Whether LOG_LEVEL asks for debug detail, for the stack trace of an unexpected failure: never throws. */
export function debugRequested(env: NodeJS.ProcessEnv): boolean {
  try {
    return settingReader(env, {}).value(SETTINGS.logLevel).value === "debug";
  } catch (error) {
    if (error instanceof ConfigError) return false;
    throw error;
  }
}
