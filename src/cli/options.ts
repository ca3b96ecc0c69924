// Option helpers shared by the commands.

import { type Command, Option } from "commander";

export function logLevelOption(): Option {
  return new Option("--log-level <level>", "log level")
    .choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info")
    .env("LOG_LEVEL");
}

export function logFormatOption(): Option {
  return new Option("--log-format <format>", "json lines, or pretty for people").choices(["json", "pretty"]).default("json").env("LOG_FORMAT");
}

/**
 * The options the user gave as flags. Commander also fills options from env; src/config reads env itself,
 * so that its messages name the variable or the flag the user actually set.
 */
export function onlyGivenFlags(options: Record<string, string | undefined>, command: Command): Record<string, string | undefined> {
  return Object.fromEntries(
    Object.keys(options)
      .filter((key) => command.getOptionValueSource(key) === "cli")
      .map((key) => [key, options[key]]),
  );
}
