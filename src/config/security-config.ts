// Security settings of the server (tokens and roles, TLS, the non-loopback guard): their settings become one
// validated SecurityConfig, or a ConfigError naming the variable or flag. The `role:token` syntax itself is
// in role-token.ts.

import { ConfigError } from "./config-error.js";
import type { RoleToken } from "./role-token.js";
import { type SettingReader, settingReader } from "./setting-reader.js";
import { flagAndEnv } from "./setting.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

export interface TlsFiles {
  /** The server's certificate chain (PEM). */
  readonly certFile: string;
  /** Its private key (PEM). */
  readonly keyFile: string;
  /** CA certificates (PEM) that sign client certificates: set, mutual TLS is required. */
  readonly clientCaFile: string | undefined;
}

export interface SecurityConfig {
  /** Listening beyond loopback without authentication is refused unless this is set. */
  readonly allowUnauthenticated: boolean;
  /** Tokens from REGISTRY_TOKENS or --token (fixed for the process's life). */
  readonly tokens: readonly RoleToken[];
  /** A file of `role:token` lines, read at start and again on SIGHUP. */
  readonly tokenFile: string | undefined;
  /** TLS on both listeners; undefined: plaintext. */
  readonly tls: TlsFiles | undefined;
}

/** No authentication, no TLS: what tests and a loopback-only server start with. */
export const NO_SECURITY: SecurityConfig = { allowUnauthenticated: false, tokens: [], tokenFile: undefined, tls: undefined };

/**
 * Authentication is on as soon as anything could authenticate a caller: a token (given, or a token file,
 * even one that is empty for now) or a client CA. Off, every caller may do everything (the prototype's way).
 */
export function authenticationEnabled(config: SecurityConfig): boolean {
  return config.tokens.length > 0 || config.tokenFile !== undefined || config.tls?.clientCaFile !== undefined;
}

export function loadSecurityConfig(env: NodeJS.ProcessEnv, flags: FlagsOf<"serve"> = {}): SecurityConfig {
  const read = settingReader(env, flags);
  return {
    allowUnauthenticated: read.isOn(SETTINGS.insecureAllowUnauthenticated),
    tokens: read.list(SETTINGS.tokens),
    tokenFile: read.value(SETTINGS.tokenFile)?.value,
    tls: loadTlsFiles(read),
  };
}

function loadTlsFiles(read: SettingReader): TlsFiles | undefined {
  const cert = read.value(SETTINGS.tlsCert);
  const key = read.value(SETTINGS.tlsKey);
  const clientCa = read.value(SETTINGS.tlsClientCa);
  const both = `${flagAndEnv(SETTINGS.tlsCert)} and ${flagAndEnv(SETTINGS.tlsKey)}`;
  if (cert === undefined && key === undefined) {
    if (clientCa !== undefined) {
      throw new ConfigError(`${clientCa.name} (mutual TLS) needs TLS: give the server's certificate and key too (${SETTINGS.tlsCert.flag} and ${SETTINGS.tlsKey.flag})`);
    }
    return undefined;
  }
  if (cert === undefined || key === undefined) {
    throw new ConfigError(`${(cert ?? key)?.name ?? ""} needs its partner: TLS takes both ${both}`);
  }
  return { certFile: cert.value, keyFile: key.value, clientCaFile: clientCa?.value };
}
