// loadAgentConfig (src/config/agent-config.ts): what `agent-registry agent` runs with.

import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { type AgentFlags, loadAgentConfig } from "../../src/config/agent-config.js";
import { ConfigError } from "../../src/config/config-error.js";
import { configErrorOf } from "../support/config-errors.js";

/** The ConfigError that loading `env` and `flags` throws. */
const configError = (env: NodeJS.ProcessEnv, flags: AgentFlags = {}): ConfigError => configErrorOf(() => loadAgentConfig(env, flags));

describe("the node daemon's configuration", () => {
  describe("with nothing set", () => {
    const config = loadAgentConfig({ HOME: "/home/me" });

    it("reports to 127.0.0.1:50051", () => {
      expect(config.registryAddress).toBe("127.0.0.1:50051");
    });

    it("probes Ollama at http://127.0.0.1:11434 and registers its port", () => {
      expect(config.ollamaUrl).toBe("http://127.0.0.1:11434/");
      expect(config.port).toBe(11434);
    });

    it("leaves ip_address empty for a loopback Ollama, so the server uses the daemon's address", () => {
      expect(config.ipAddress).toBe("");
    });

    it("registers under this machine's host name, without labels", () => {
      expect(config.hostname).toBe(hostname());
      expect(config.labels).toEqual({});
    });

    it("keeps its id in agent-state.json in the data directory", () => {
      expect(config.stateFile).toMatch(/\/\.ollama-router\/agent-state\.json$/);
    });
  });

  it("reads REGISTRY_ADDR, OLLAMA_URL and REGISTRY_DATA_DIR, and flags win", () => {
    const env = { REGISTRY_ADDR: "10.0.0.1:50051", OLLAMA_URL: "http://10.0.0.7:11434", REGISTRY_DATA_DIR: "/var/lib/reg" };
    expect(loadAgentConfig(env)).toMatchObject({
      registryAddress: "10.0.0.1:50051",
      ipAddress: "10.0.0.7",
      stateFile: "/var/lib/reg/agent-state.json",
    });
    expect(
      loadAgentConfig(env, { registryAddr: "[::1]:6000", ollamaUrl: "http://10.0.0.8:8080", dataDir: "/data", stateFile: "id.json" }),
    ).toMatchObject({ registryAddress: "[::1]:6000", ipAddress: "10.0.0.8", port: 8080, stateFile: resolve("id.json") });
    expect(loadAgentConfig(env, { dataDir: "/data" }).stateFile).toBe(join("/data", "agent-state.json"));
  });

  it.each([
    { url: "http://127.0.0.1:11434", ip: "" },
    { url: "http://127.1.2.3:11434", ip: "" },
    { url: "http://[::1]:11434", ip: "" },
    { url: "http://localhost:11434", ip: "" },
    { url: "http://0.0.0.0:11434", ip: "" },
    { url: "http://[::]:11434", ip: "" },
    { url: "http://ollama.internal:11434", ip: "" },
    { url: "http://192.168.1.20:11434", ip: "192.168.1.20" },
    { url: "http://[FD00::7]:11434", ip: "fd00::7" },
  ])("registers ip_address $ip for OLLAMA_URL $url", ({ url, ip }) => {
    expect(loadAgentConfig({ OLLAMA_URL: url }).ipAddress).toBe(ip);
  });

  it("takes Ollama's port from the URL, or the scheme's default as any URL does", () => {
    expect(loadAgentConfig({ OLLAMA_URL: "http://10.0.0.7" }).port).toBe(80);
    expect(loadAgentConfig({ OLLAMA_URL: "https://10.0.0.7" }).port).toBe(443);
    expect(loadAgentConfig({ OLLAMA_URL: "https://10.0.0.7:8443/ollama" }).ollamaUrl).toBe("https://10.0.0.7:8443/ollama");
  });

  it("collects repeated --label flags", () => {
    expect(loadAgentConfig({}, { label: ["gpu=a100", "zone=eu-west", "empty="] }).labels).toEqual({
      gpu: "a100",
      zone: "eu-west",
      empty: "",
    });
  });

  it("keeps '=' after the first one in a label's value out, as the registry refuses it", () => {
    expect(configError({}, { label: ["a=b=c"] }).message).toMatch(/^--label: value of "a" must be/);
  });

  it.each<{ env?: NodeJS.ProcessEnv; flags?: AgentFlags; names: string }>([
    { env: { REGISTRY_ADDR: "50051" }, names: "REGISTRY_ADDR must be the registry's gRPC address as host:port" },
    { env: { REGISTRY_ADDR: "127.0.0.1:0" }, names: "REGISTRY_ADDR" },
    { flags: { registryAddr: "nope" }, names: "--registry-addr" },
    { env: { OLLAMA_URL: "127.0.0.1:11434" }, names: "OLLAMA_URL must be Ollama's http:// or https:// URL" },
    { env: { OLLAMA_URL: "ftp://10.0.0.7" }, names: "OLLAMA_URL" },
    { flags: { ollamaUrl: "http://" }, names: "--ollama-url" },
    { flags: { label: ["gpu"] }, names: '--label must be key=value, e.g. --label gpu=a100, got "gpu"' },
    { flags: { label: ["=a100"] }, names: "--label must be key=value" },
    { flags: { label: ["gpu=a", "gpu=b"] }, names: "--label gpu is given more than once" },
    { flags: { label: ["bad key=x"] }, names: '--label: key "bad key" must be' },
    { flags: { hostname: "not a host" }, names: "--hostname: must be a DNS host name" },
  ])("refuses $env $flags with a message naming the variable or flag", ({ env = {}, flags = {}, names }) => {
    expect(configError(env, flags).message).toContain(names);
  });
});

describe("the node daemon's credentials", () => {
  it("are a token from REGISTRY_TOKEN (or --token) and no TLS by default", () => {
    const config = loadAgentConfig({ HOME: "/home/me", REGISTRY_TOKEN: "agent-token-0123456789" });
    expect(config.security).toEqual({ token: "agent-token-0123456789", tls: undefined });
  });

  it("turn TLS on with --ca, --cert and --key, or with --tls (REGISTRY_TLS) and the system's CAs", () => {
    expect(loadAgentConfig({ HOME: "/h" }, { ca: "ca.crt", cert: "me.crt", key: "me.key" }).security.tls).toEqual({
      caFile: "ca.crt",
      certFile: "me.crt",
      keyFile: "me.key",
    });
    const system = { caFile: undefined, certFile: undefined, keyFile: undefined };
    expect(loadAgentConfig({ HOME: "/h" }, { tls: true }).security.tls).toEqual(system);
    expect(loadAgentConfig({ HOME: "/h", REGISTRY_TLS: "true" }).security.tls).toEqual(system);
  });

  it("refuse a certificate without its key and a REGISTRY_TLS that is not a boolean", () => {
    expect(configError({ HOME: "/h" }, { cert: "me.crt" }).message).toMatch(/^--cert needs its partner/);
    expect(configError({ HOME: "/h", REGISTRY_TLS: "on" }).message).toMatch(/^REGISTRY_TLS must be true or false/);
  });
});

describe("the node daemon's log level", () => {
  it("is info by default, LOG_LEVEL, and --log-level over it", () => {
    expect(loadAgentConfig({}).logLevel).toBe("info");
    expect(loadAgentConfig({ LOG_LEVEL: "warn" }).logLevel).toBe("warn");
    expect(loadAgentConfig({ LOG_LEVEL: "warn" }, { logLevel: "trace" }).logLevel).toBe("trace");
  });

  it("refuses a level pino does not have, naming the flag", () => {
    expect(configError({}, { logLevel: "loud" }).message).toBe('--log-level must be fatal, error, warn, info, debug, trace or silent, got "loud"');
  });
});
