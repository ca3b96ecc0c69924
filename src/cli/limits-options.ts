// The `serve` flags for resource limits (see src/config/limits-config.ts for what they mean and their env).

import { type Command, Option } from "commander";
import { LIMIT_SETTINGS, type LimitsFlags } from "../config/index.js";

export function addLimitsOptions(command: Command): Command {
  for (const setting of LIMIT_SETTINGS) {
    const argument = setting.unit === "seconds" ? "seconds" : setting.unit === "bytes" ? "bytes" : "n";
    command.addOption(
      new Option(`${setting.flag} <${argument}>`, `${setting.help} (default ${setting.defaultValue})`).env(setting.env),
    );
  }
  return command;
}

/** The limit flags the user gave (env is read by config, so that its errors name the variable). */
export function limitsFlags(options: Record<string, unknown>, command: Command): LimitsFlags {
  const flags: LimitsFlags = {};
  for (const { flagKey } of LIMIT_SETTINGS) {
    const value = options[flagKey];
    if (command.getOptionValueSource(flagKey) === "cli" && typeof value === "string") flags[flagKey] = value;
  }
  return flags;
}
