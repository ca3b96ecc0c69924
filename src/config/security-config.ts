// Security settings of the server (tokens and roles, TLS, the non-loopback guard): env and flags become
// one validated SecurityConfig, or a ConfigError naming the variable or flag. Read by config/index.ts. Also the
// `role:token` syntax, shared by REGISTRY_TOKENS, --token and the token file (read by server/token-file.ts).
// Error messages never repeat a token: they name where it was given instead.

import { ConfigError } from "./config-error.js";

/** What a caller may do: agent (Register, Heartbeat, Deregister of itself), reader (List, Get, Watch), admin (all). */
export type Role = "agent" | "reader" | "admin";

export const ROLES: readonly Role[] = ["agent", "reader", "admin"];

export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text);
}

export interface RoleToken {
  readonly role: Role;
  readonly token: string;
  /** Where it was given, for messages: "REGISTRY_TOKENS entry 2", "--token #1", "/etc/registry/tokens:4". */
  readonly source: string;
}

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

/** Flag values as the CLI parsed them; absent means "not given". */
export interface SecurityFlags {
  insecureAllowUnauthenticated?: boolean | undefined;
  /** Each `--token role:token`, in order. */
  token?: readonly string[] | undefined;
  tokenFile?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsClientCa?: string | undefined;
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

export function loadSecurityConfig(env: NodeJS.ProcessEnv, flags: SecurityFlags = {}): SecurityConfig {
  const allow = flags.insecureAllowUnauthenticated ?? parseBoolean(env, "REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED");
  const tokens =
    flags.token !== undefined && flags.token.length > 0
      ? flags.token.map((entry, index) => parseRoleToken(entry, `--token #${index + 1}`))
      : parseTokenList(env["REGISTRY_TOKENS"] ?? "", "REGISTRY_TOKENS");
  checkUnique(tokens);
  const tokenFile = flags.tokenFile ?? nonEmpty(env["REGISTRY_TOKEN_FILE"]);
  return { allowUnauthenticated: allow, tokens, tokenFile, tls: loadTlsFiles(env, flags) };
}

function loadTlsFiles(env: NodeJS.ProcessEnv, flags: SecurityFlags): TlsFiles | undefined {
  const cert = flags.tlsCert !== undefined ? { name: "--tls-cert", value: flags.tlsCert } : named(env, "REGISTRY_TLS_CERT");
  const key = flags.tlsKey !== undefined ? { name: "--tls-key", value: flags.tlsKey } : named(env, "REGISTRY_TLS_KEY");
  const clientCa =
    flags.tlsClientCa !== undefined ? { name: "--tls-client-ca", value: flags.tlsClientCa } : named(env, "REGISTRY_TLS_CLIENT_CA");
  if (cert === undefined && key === undefined) {
    if (clientCa !== undefined) {
      throw new ConfigError(`${clientCa.name} (mutual TLS) needs TLS: give the server's certificate and key too (--tls-cert and --tls-key)`);
    }
    return undefined;
  }
  if (cert === undefined || key === undefined) {
    const given = (cert ?? key)?.name ?? "";
    throw new ConfigError(`${given} needs its partner: TLS takes both --tls-cert (REGISTRY_TLS_CERT) and --tls-key (REGISTRY_TLS_KEY)`);
  }
  return { certFile: cert.value, keyFile: key.value, clientCaFile: clientCa?.value };
}

/** A comma-separated `role:token` list, e.g. "agent:tok1,reader:tok2"; empty entries are skipped. */
export function parseTokenList(text: string, name: string): RoleToken[] {
  return text
    .split(",")
    .map((entry, index) => ({ entry: entry.trim(), index }))
    .filter(({ entry }) => entry !== "")
    .map(({ entry, index }) => parseRoleToken(entry, `${name} entry ${index + 1}`));
}

/** The token file's text: one `role:token` a line; blank lines and `#` comments are skipped. */
export function parseTokenLines(text: string, path: string): RoleToken[] {
  const tokens: RoleToken[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    // '#' is not a token character, so everything after one is a comment.
    const line = raw.replace(/#.*$/, "").trim();
    if (line !== "") tokens.push(parseRoleToken(line, `${path}:${index + 1}`));
  });
  checkUnique(tokens);
  return tokens;
}

/** RFC 6750's token68 characters, so a token always fits an HTTP header and gRPC metadata as it is. */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
export const MIN_TOKEN_LENGTH = 16;

export function parseRoleToken(entry: string, source: string): RoleToken {
  const colon = entry.indexOf(":");
  const role = colon < 0 ? "" : entry.slice(0, colon).trim();
  if (!isRole(role)) {
    const shown = colon < 0 ? "no role" : `role ${JSON.stringify(role.slice(0, 20))}`;
    throw new ConfigError(`${source}: must be role:token with role agent, reader or admin, e.g. reader:$(openssl rand -hex 32); found ${shown}`);
  }
  const token = entry.slice(colon + 1).trim();
  if (token.length < MIN_TOKEN_LENGTH || !TOKEN.test(token)) {
    throw new ConfigError(
      `${source}: the ${role} token must be at least ${MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 - . _ ~ + / (e.g. from \`openssl rand -hex 32\`); ` +
        `got ${token.length} characters${TOKEN.test(token) || token === "" ? "" : ", some of them not allowed"}`,
    );
  }
  return { role, token, source };
}

/** One token, one role: a token given twice is refused, naming both places (never the token). */
export function checkUnique(tokens: readonly RoleToken[]): void {
  const seen = new Map<string, RoleToken>();
  for (const entry of tokens) {
    const first = seen.get(entry.token);
    if (first !== undefined) {
      throw new ConfigError(`${entry.source}: the same token as ${first.source}; give each token once, with one role`);
    }
    seen.set(entry.token, entry);
  }
}

function named(env: NodeJS.ProcessEnv, variable: string): { name: string; value: string } | undefined {
  const value = nonEmpty(env[variable]);
  return value === undefined ? undefined : { name: variable, value };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function parseBoolean(env: NodeJS.ProcessEnv, variable: string): boolean {
  const value = env[variable];
  if (value === undefined || value === "" || value === "0" || value === "false") return false;
  if (value === "1" || value === "true") return true;
  throw new ConfigError(`${variable} must be true or false (or 1 or 0), got ${JSON.stringify(value)}`);
}
