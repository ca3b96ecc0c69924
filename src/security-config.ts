// Security settings of the server (tokens and roles, TLS, the non-loopback guard): env and flags become
// one validated SecurityConfig, or a ConfigError naming the variable or flag. Read by config.ts.

import { ConfigError } from "./config-error.js";

export interface SecurityConfig {
  /** Listening beyond loopback without authentication is refused unless this is set. */
  readonly allowUnauthenticated: boolean;
}

/** Flag values as the CLI parsed them; absent means "not given". */
export interface SecurityFlags {
  insecureAllowUnauthenticated?: boolean | undefined;
}

/** No authentication, no TLS: what tests and a loopback-only server start with. */
export const NO_SECURITY: SecurityConfig = { allowUnauthenticated: false };

export function loadSecurityConfig(env: NodeJS.ProcessEnv, flags: SecurityFlags = {}): SecurityConfig {
  const allow = flags.insecureAllowUnauthenticated ?? parseBoolean(env, "REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED");
  return { allowUnauthenticated: allow };
}

function parseBoolean(env: NodeJS.ProcessEnv, variable: string): boolean {
  const value = env[variable];
  if (value === undefined || value === "" || value === "0" || value === "false") return false;
  if (value === "1" || value === "true") return true;
  throw new ConfigError(`${variable} must be true or false (or 1 or 0), got ${JSON.stringify(value)}`);
}
