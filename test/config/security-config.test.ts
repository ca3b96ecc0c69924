// loadSecurityConfig (src/config/security-config.ts) and the token file's syntax (role-token.ts): tokens,
// TLS files, and when authentication is on. Messages name where a token was given, never the token.

import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { parseTokenLines } from "../../src/config/role-token.js";
import { NO_SECURITY, authenticationEnabled, loadSecurityConfig } from "../../src/config/security-config.js";
import type { ServerFlags } from "../../src/config/server-config.js";
import { configErrorOf } from "../support/config-errors.js";

const A = "a".repeat(16);
const B = "b".repeat(16);
const C = "c".repeat(16);

/** The ConfigError that loading `env` and `flags` throws. */
const configError = (env: NodeJS.ProcessEnv, flags: ServerFlags = {}): ConfigError => configErrorOf(() => loadSecurityConfig(env, flags));

describe("the server's security settings", () => {
  it("are off with nothing set", () => {
    const config = loadSecurityConfig({});
    expect(config).toEqual(NO_SECURITY);
    expect(authenticationEnabled(config)).toBe(false);
  });

  it("take tokens from REGISTRY_TOKENS, and --token flags instead of it", () => {
    const fromEnv = loadSecurityConfig({ REGISTRY_TOKENS: `agent:${A}, reader:${B},` });
    expect(fromEnv.tokens).toEqual([
      { role: "agent", token: A, source: "REGISTRY_TOKENS entry 1" },
      { role: "reader", token: B, source: "REGISTRY_TOKENS entry 2" },
    ]);
    expect(authenticationEnabled(fromEnv)).toBe(true);
    const fromFlags = loadSecurityConfig({ REGISTRY_TOKENS: `agent:${A}` }, { token: [`admin:${C}`] });
    expect(fromFlags.tokens).toEqual([{ role: "admin", token: C, source: "--token #1" }]);
  });

  it("turn authentication on with a token file (even before it holds a token) or a client CA", () => {
    expect(authenticationEnabled(loadSecurityConfig({ REGISTRY_TOKEN_FILE: "/etc/registry/tokens" }))).toBe(true);
    const mtls = loadSecurityConfig({}, { tlsCert: "s.crt", tlsKey: "s.key", tlsClientCa: "ca.crt" });
    expect(mtls.tls).toEqual({ certFile: "s.crt", keyFile: "s.key", clientCaFile: "ca.crt" });
    expect(authenticationEnabled(mtls)).toBe(true);
    expect(authenticationEnabled(loadSecurityConfig({ REGISTRY_TLS_CERT: "s.crt", REGISTRY_TLS_KEY: "s.key" }))).toBe(false);
  });

  it.each([
    { env: { REGISTRY_TOKENS: `writer:${A}` }, flags: {}, message: /^REGISTRY_TOKENS entry 1: must be role:token with role agent, reader or admin/ },
    { env: { REGISTRY_TOKENS: A }, flags: {}, message: /^REGISTRY_TOKENS entry 1: must be role:token .*found no role/ },
    { env: {}, flags: { token: [`agent:${A}`, "reader:short"] }, message: /^--token #2: the reader token must be at least 16 characters/ },
    { env: {}, flags: { token: [`agent:${"x".repeat(15)} y`] }, message: /^--token #1: the agent token .*some of them not allowed/ },
    { env: { REGISTRY_TOKENS: `agent:${A},reader:${A}` }, flags: {}, message: /^REGISTRY_TOKENS entry 2: the same token as REGISTRY_TOKENS entry 1/ },
    { env: { REGISTRY_TLS_CERT: "s.crt" }, flags: {}, message: /^REGISTRY_TLS_CERT needs its partner/ },
    { env: {}, flags: { tlsKey: "s.key" }, message: /^--tls-key needs its partner/ },
    { env: { REGISTRY_TLS_CLIENT_CA: "ca.crt" }, flags: {}, message: /^REGISTRY_TLS_CLIENT_CA \(mutual TLS\) needs TLS/ },
    { env: { REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED: "yes" }, flags: {}, message: /^REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED must be true or false/ },
  ])("refuse $env $flags with a message naming the setting", ({ env, flags, message }) => {
    const error = configError(env, flags);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain(A);
  });
});

describe("the token file's syntax", () => {
  it("is one role:token a line, with blank lines and # comments", () => {
    const text = `# fleet tokens\n\nagent:${A}\r\n  reader:${B}   # dashboards\nadmin:${C}\n`;
    expect(parseTokenLines(text, "/etc/tokens")).toEqual([
      { role: "agent", token: A, source: "/etc/tokens:3" },
      { role: "reader", token: B, source: "/etc/tokens:4" },
      { role: "admin", token: C, source: "/etc/tokens:5" },
    ]);
  });

  it("names the file and line of a bad entry, and of a token given twice, without the token", () => {
    expect(() => parseTokenLines(`agent:${A}\nroot:${B}\n`, "/etc/tokens")).toThrow(/^\/etc\/tokens:2: must be role:token/);
    expect(() => parseTokenLines(`agent:${A}\n\nadmin:${A}\n`, "/etc/tokens")).toThrow(
      new ConfigError("/etc/tokens:3: the same token as /etc/tokens:1; give each token once, with one role"),
    );
  });
});
