// loadClientConfig (src/config/client-config.ts): where the client commands find the registry, with what credentials.

import { describe, expect, it } from "vitest";
import { loadClientConfig } from "../../src/config/client-config.js";
import { ConfigError } from "../../src/config/config-error.js";

describe("the registry URL of the client commands", () => {
  it("is http://127.0.0.1:50052 with nothing set", () => {
    expect(loadClientConfig({})).toEqual({ url: "http://127.0.0.1:50052", security: { token: undefined, tls: undefined } });
  });

  it("comes from REGISTRY_URL, and --url wins over it", () => {
    expect(loadClientConfig({ REGISTRY_URL: "http://registry:8080" }).url).toBe("http://registry:8080");
    expect(loadClientConfig({ REGISTRY_URL: "http://registry:8080" }, { url: "https://other" }).url).toBe("https://other");
  });

  it("keeps a path prefix (a proxy) without its trailing slash", () => {
    expect(loadClientConfig({}, { url: "http://proxy/registry/" }).url).toBe("http://proxy/registry");
  });

  it.each([
    { env: { REGISTRY_URL: "127.0.0.1:50052" }, flags: {}, names: "REGISTRY_URL" },
    { env: { REGISTRY_URL: "http://fine" }, flags: { url: "ftp://registry" }, names: "--url" },
    { env: {}, flags: { url: "http://registry?x=1" }, names: "--url" },
    { env: {}, flags: { url: "" }, names: "--url" },
  ])("refuses $flags $env with an error naming $names", ({ env, flags, names }) => {
    expect(() => loadClientConfig(env, flags)).toThrow(ConfigError);
    expect(() => loadClientConfig(env, flags)).toThrow(new RegExp(`^${names} must be .*http://127\\.0\\.0\\.1:50052`));
  });
});

describe("the client commands' credentials", () => {
  it("take the token from REGISTRY_TOKEN, and --token over it", () => {
    expect(loadClientConfig({ REGISTRY_TOKEN: "from-env-0123456789" }).security.token).toBe("from-env-0123456789");
    expect(loadClientConfig({ REGISTRY_TOKEN: "from-env-0123456789" }, { token: "from-flag-012345678" }).security.token).toBe("from-flag-012345678");
  });

  it("refuse a token given with its role or its scheme, saying what to give instead", () => {
    expect(() => loadClientConfig({ REGISTRY_TOKEN: "reader:abcdef0123456789" })).toThrow(/^REGISTRY_TOKEN must be the bearer token alone without its role/);
    expect(() => loadClientConfig({}, { token: "Bearer abcdef0123456789" })).toThrow(/^--token must be the bearer token alone without "Bearer "/);
  });

  it("take a CA and a client certificate for an https:// URL", () => {
    const config = loadClientConfig({ REGISTRY_CA: "/etc/registry/ca.crt" }, { url: "https://registry:50052", cert: "me.crt", key: "me.key" });
    expect(config.security.tls).toEqual({ caFile: "/etc/registry/ca.crt", certFile: "me.crt", keyFile: "me.key" });
  });

  it("refuse TLS files with an http:// URL, and a certificate without its key", () => {
    expect(() => loadClientConfig({}, { ca: "ca.crt" })).toThrow(/^--ca is for TLS: give the registry's URL as https:\/\//);
    expect(() => loadClientConfig({ REGISTRY_CLIENT_CERT: "me.crt" }, { url: "https://registry" })).toThrow(/^REGISTRY_CLIENT_CERT needs its partner/);
  });
});
