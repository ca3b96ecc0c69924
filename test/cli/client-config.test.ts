// loadClientConfig (src/config.ts): where the client commands find the registry.

import { describe, expect, it } from "vitest";
import { ConfigError, loadClientConfig } from "../../src/config.js";

describe("the registry URL of the client commands", () => {
  it("is http://127.0.0.1:50052 with nothing set", () => {
    expect(loadClientConfig({})).toEqual({ url: "http://127.0.0.1:50052" });
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
