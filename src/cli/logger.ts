// The process logger: pino JSON lines on stderr, or pino-pretty's human-readable lines for a terminal.

import { type Logger, pino } from "pino";
import pretty from "pino-pretty";
import type { LogFormat, LogLevel } from "../config/index.js";

export function createLogger(service: string, level: LogLevel, format: LogFormat): Logger {
  const options = { level, base: { service } };
  // pino-pretty as an in-process stream (not a worker transport), so nothing outlives shutdown.
  return format === "pretty"
    ? pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, ignore: "pid" }))
    : pino(options, pino.destination(2));
}
