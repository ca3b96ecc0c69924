// The `role:token` syntax of the server's tokens, shared by REGISTRY_TOKENS, --token and the token file
// (read by server/token-file.ts), and the token characters a bearer token may have. Messages never repeat a
// token: they name where it was given instead.

import { ConfigError } from "./config-error.js";
import { commaSeparatedEntries } from "./setting-reader.js";
import type { GivenEntries } from "./setting.js";

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

/** RFC 6750's token68 characters, so a token always fits an HTTP header and gRPC metadata as it is. */
export const TOKEN_CHARACTERS = /^[A-Za-z0-9\-._~+/]+=*$/;
export const MIN_TOKEN_LENGTH = 16;

/** The tokens of REGISTRY_TOKENS or of the --token flags, each given once. */
export function parseRoleTokens({ entries }: GivenEntries): RoleToken[] {
  const tokens = entries.map(({ value, where }) => parseRoleToken(value, where));
  checkUnique(tokens);
  return tokens;
}

/** A comma-separated `role:token` list, e.g. "agent:tok1,reader:tok2"; empty entries are skipped. */
export function parseTokenList(text: string, name: string): RoleToken[] {
  return commaSeparatedEntries(text, name).map(({ value, where }) => parseRoleToken(value, where));
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

export function parseRoleToken(entry: string, source: string): RoleToken {
  const colon = entry.indexOf(":");
  const role = colon < 0 ? "" : entry.slice(0, colon).trim();
  if (!isRole(role)) {
    const shown = colon < 0 ? "no role" : `role ${JSON.stringify(role.slice(0, 20))}`;
    throw new ConfigError(`${source}: must be role:token with role agent, reader or admin, e.g. reader:$(openssl rand -hex 32); found ${shown}`);
  }
  const token = entry.slice(colon + 1).trim();
  if (token.length < MIN_TOKEN_LENGTH || !TOKEN_CHARACTERS.test(token)) {
    throw new ConfigError(
      `${source}: the ${role} token must be at least ${MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 - . _ ~ + / (e.g. from \`openssl rand -hex 32\`); ` +
        `got ${token.length} characters${TOKEN_CHARACTERS.test(token) || token === "" ? "" : ", some of them not allowed"}`,
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
