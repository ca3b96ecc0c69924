// The `serve` flags for security settings (see src/security-config.ts for what they mean and their env).

import { type Command, Option } from "commander";
import type { SecurityFlags } from "../security-config.js";

export function addSecurityOptions(command: Command): Command {
  return command.addOption(
    new Option(
      "--insecure-allow-unauthenticated",
      "allow listening beyond loopback with authentication off (warned at every start)",
    ),
  );
}

/** The security flags the user gave (env is read by config). */
export function securityFlags(options: Record<string, unknown>, command: Command): SecurityFlags {
  const given = (key: string): boolean => command.getOptionValueSource(key) === "cli";
  return {
    insecureAllowUnauthenticated: given("insecureAllowUnauthenticated") ? options["insecureAllowUnauthenticated"] === true : undefined,
  };
}
