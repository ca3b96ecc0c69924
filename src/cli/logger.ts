// The process logger: pino JSON lines on stderr, or pino-pretty's human-readable lines for a terminal.

import { type Logger, pino } from "pino";
import type { LogFormat, LogLevel } from "../config/index.js";

export async function createLogger(service: string, level: LogLevel, format: LogFormat): Promise<Logger> {
  const options = { level, base: { service } };
  if (format === "json") return pino(options, pino.destination(2));
  // pino-pretty as an in-process stream (not a worker transport), so nothing outlives shutdown; loaded only
  // when asked for, as it costs start-up time.
  const { default: pretty } = await import("pino-pretty");
  return pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, ignore: "pid" }));
}
