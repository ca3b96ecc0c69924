// How the node daemon and the CLI prove who they are to the registry: a bearer token and TLS files (a CA to
// trust the server by, a client certificate and key for mutual TLS). Their settings become one validated
// ClientSecurity, or a ConfigError naming the variable or flag.

import { ConfigError } from "./config-error.js";
import { settingReader } from "./setting-reader.js";
import { flagAndEnv } from "./setting.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

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

/** The flags both the node daemon and the client commands take for their credentials. */
export type ClientSecurityFlags = Pick<FlagsOf<"client">, "token" | "ca" | "cert" | "key">;

export function loadClientSecurity(env: NodeJS.ProcessEnv, flags: ClientSecurityFlags = {}): ClientSecurity {
  const read = settingReader(env, flags);
  const token = read.value(SETTINGS.token);
  const ca = read.value(SETTINGS.ca);
  const cert = read.value(SETTINGS.cert);
  const key = read.value(SETTINGS.key);
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(
      `${(cert ?? key)?.name ?? ""} needs its partner: a client certificate takes both ${flagAndEnv(SETTINGS.cert)} and ${flagAndEnv(SETTINGS.key)}`,
    );
  }
  const tls = ca === undefined && cert === undefined ? undefined : { caFile: ca?.value, certFile: cert?.value, keyFile: key?.value };
  return { token: token?.value, tls };
}

/** The name of the first TLS setting given, for messages such as "--ca is for TLS: give an https:// URL". */
export function firstTlsSetting(env: NodeJS.ProcessEnv, flags: ClientSecurityFlags): string | undefined {
  const read = settingReader(env, flags);
  return read.value(SETTINGS.ca)?.name ?? read.value(SETTINGS.cert)?.name;
}
