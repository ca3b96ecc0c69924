// How the node daemon and the CLI prove who they are to the registry: a bearer token and TLS files (a CA to
// trust the server by, a client certificate and key for mutual TLS). Env and flags become one validated
// ClientSecurity, or a ConfigError naming the variable or flag. Read by config/index.ts.

import { ConfigError } from "./config-error.js";

export interface ClientTlsFiles {
  /** CA certificates (PEM) to verify the server by; undefined: the system's CAs. */
  readonly caFile: string | undefined;
  /** A client certificate (PEM) and its key, for a server that requires mutual TLS. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
}

export interface ClientSecurity {
  /** Sent as `authorization: Bearer <token>` on every call; undefined: none. */
  readonly token: string | undefined;
  /** TLS files; undefined with nothing given (the connection is then plaintext unless the URL says https). */
  readonly tls: ClientTlsFiles | undefined;
}

/** Flag values as the CLI parsed them; absent means "not given". */
export interface ClientSecurityFlags {
  token?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

export function loadClientSecurity(env: NodeJS.ProcessEnv, flags: ClientSecurityFlags = {}): ClientSecurity {
  const token = pick(env, "REGISTRY_TOKEN", "--token", flags.token);
  if (token !== undefined && !TOKEN.test(token.value)) {
    const hint = /^bearer\s/i.test(token.value)
      ? ' without "Bearer "'
      : token.value.includes(":")
        ? " without its role (the server's token list has role:token; give only the part after the colon)"
        : "";
    throw new ConfigError(`${token.name} must be the bearer token alone${hint}: characters A-Z a-z 0-9 - . _ ~ + /`);
  }
  const ca = pick(env, "REGISTRY_CA", "--ca", flags.ca);
  const cert = pick(env, "REGISTRY_CLIENT_CERT", "--cert", flags.cert);
  const key = pick(env, "REGISTRY_CLIENT_KEY", "--key", flags.key);
  if ((cert === undefined) !== (key === undefined)) {
    const given = (cert ?? key)?.name ?? "";
    throw new ConfigError(`${given} needs its partner: a client certificate takes both --cert (REGISTRY_CLIENT_CERT) and --key (REGISTRY_CLIENT_KEY)`);
  }
  const tls =
    ca === undefined && cert === undefined ? undefined : { caFile: ca?.value, certFile: cert?.value, keyFile: key?.value };
  return { token: token?.value, tls };
}

/** The name of the first TLS setting given, for messages such as "--ca needs an https:// URL". */
export function firstTlsSetting(env: NodeJS.ProcessEnv, flags: ClientSecurityFlags): string | undefined {
  return (
    pick(env, "REGISTRY_CA", "--ca", flags.ca)?.name ?? pick(env, "REGISTRY_CLIENT_CERT", "--cert", flags.cert)?.name
  );
}

function pick(env: NodeJS.ProcessEnv, variable: string, flag: string, flagValue: string | undefined): { name: string; value: string } | undefined {
  if (flagValue !== undefined) return { name: flag, value: flagValue.trim() };
  const value = env[variable];
  return value === undefined || value.trim() === "" ? undefined : { name: variable, value: value.trim() };
}
