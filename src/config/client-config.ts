// The client commands' configuration (list, get, watch, deregister): where the registry's HTTP listener is,
// and the credentials to call it with, as one validated ClientConfig or a ConfigError naming the setting.

import { type ClientSecurity, firstTlsSetting, loadClientSecurity } from "./client-security-config.js";
import { ConfigError } from "./config-error.js";
import { settingReader } from "./setting-reader.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

export interface ClientConfig {
  /** The registry's HTTP listener (Connect), without a trailing slash, e.g. "http://127.0.0.1:50052". */
  readonly url: string;
  /** Token and TLS files; TLS is on when the URL is https://. */
  readonly security: ClientSecurity;
}

/** The flags of the client commands as the CLI parsed them; absent means "not given". */
export type ClientFlags = FlagsOf<"client">;

export function loadClientConfig(env: NodeJS.ProcessEnv, flags: ClientFlags = {}): ClientConfig {
  const url = settingReader(env, flags).value(SETTINGS.url);
  const security = loadClientSecurity(env, flags);
  const tlsSetting = firstTlsSetting(env, flags);
  if (tlsSetting !== undefined && url.value.protocol !== "https:") {
    throw new ConfigError(`${tlsSetting} is for TLS: give the registry's URL as https://, got ${JSON.stringify(url.value.href)} (${url.name})`);
  }
  // Connect appends "/registry.v1.AgentRegistry/<Method>" to the base URL; a path prefix (a proxy) is kept.
  return { url: url.value.href.replace(/\/+$/, ""), security };
}
