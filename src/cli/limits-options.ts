// The `serve` flags for resource limits (see src/limits-config.ts for what they mean and their env).

import type { Command } from "commander";
import type { LimitsFlags } from "../limits-config.js";

export function addLimitsOptions(command: Command): Command {
  return command;
}

/** The limit flags the user gave (env is read by config). */
export function limitsFlags(_options: Record<string, unknown>, _command: Command): LimitsFlags {
  return {};
}
