// loadServerConfig (src/config/server-config.ts): what `agent-registry serve` runs with.

import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { formatAddress } from "../../src/config/listen-address.js";
import { SERVER_DEFAULTS, type ServerFlags, loadServerConfig } from "../../src/config/server-config.js";
import { configErrorOf } from "../support/config-errors.js";

/** The ConfigError that loading `env` and `flags` throws. */
const configError = (env: NodeJS.ProcessEnv, flags: ServerFlags = {}): ConfigError => configErrorOf(() => loadServerConfig(env, flags));

describe("with nothing set", () => {
  const config = loadServerConfig({});

  it("beats every 30 s", () => {
    expect(config.heartbeatIntervalMs).toBe(30_000);
  });

  it("marks an agent offline after 60 s", () => {
    expect(config.agentTimeoutMs).toBe(60_000);
  });

  it("listens for gRPC on 127.0.0.1:50051", () => {
    expect(config.grpcListen).toEqual({ host: "127.0.0.1", port: 50051 });
  });

  it("listens for HTTP on 127.0.0.1:50052", () => {
    expect(config.httpListen).toEqual({ host: "127.0.0.1", port: 50052 });
  });

  it("keeps its data in ~/.ollama-router, as the prototype did", () => {
    expect(config.dataDir).toBe(join(homedir(), ".ollama-router"));
  });
});

describe("environment variables", () => {
  it("set every value", () => {
    const config = loadServerConfig({
      HEARTBEAT_INTERVAL: "5",
      AGENT_TIMEOUT: "12",
      REGISTRY_GRPC_LISTEN: "0.0.0.0:6000",
      REGISTRY_HTTP_LISTEN: "localhost:6001",
      REGISTRY_DATA_DIR: "/var/lib/agent-registry",
    });

    expect(config).toEqual({
      heartbeatIntervalMs: 5_000,
      agentTimeoutMs: 12_000,
      grpcListen: { host: "0.0.0.0", port: 6000 },
      httpListen: { host: "localhost", port: 6001 },
      dataDir: "/var/lib/agent-registry",
      ...SERVER_DEFAULTS,
    });
  });

  it("that are empty count as unset", () => {
    const config = loadServerConfig({ HEARTBEAT_INTERVAL: "", AGENT_TIMEOUT: "", REGISTRY_GRPC_LISTEN: "", REGISTRY_DATA_DIR: "" });

    expect(config).toEqual(loadServerConfig({}));
  });

  it("may carry spaces around a number", () => {
    expect(loadServerConfig({ HEARTBEAT_INTERVAL: " 10 " }).heartbeatIntervalMs).toBe(10_000);
  });
});

describe("flags", () => {
  it("win over environment variables", () => {
    const config = loadServerConfig(
      {
        HEARTBEAT_INTERVAL: "5",
        AGENT_TIMEOUT: "12",
        REGISTRY_GRPC_LISTEN: "0.0.0.0:6000",
        REGISTRY_HTTP_LISTEN: "0.0.0.0:6001",
        REGISTRY_DATA_DIR: "/from/env",
      },
      {
        heartbeatInterval: "7",
        agentTimeout: "20",
        grpcListen: "127.0.0.1:7000",
        httpListen: "127.0.0.1:7001",
        dataDir: "/from/flag",
      },
    );

    expect(config).toEqual({
      heartbeatIntervalMs: 7_000,
      agentTimeoutMs: 20_000,
      grpcListen: { host: "127.0.0.1", port: 7000 },
      httpListen: { host: "127.0.0.1", port: 7001 },
      dataDir: "/from/flag",
      ...SERVER_DEFAULTS,
    });
  });

  it("that are absent leave the environment variable in force", () => {
    const config = loadServerConfig({ HEARTBEAT_INTERVAL: "5" }, { agentTimeout: "20" });

    expect([config.heartbeatIntervalMs, config.agentTimeoutMs]).toEqual([5_000, 20_000]);
  });
});

describe("durations", () => {
  it("accept fractions of a second, as tests use", () => {
    const config = loadServerConfig({ HEARTBEAT_INTERVAL: "0.2", AGENT_TIMEOUT: "0.5" });

    expect([config.heartbeatIntervalMs, config.agentTimeoutMs]).toEqual([200, 500]);
  });

  it.each(["abc", "-1", "0", "0.0", "", "1e3", "30s", "NaN", "Infinity", "0x10", "0.0001", "86401"])(
    "reject HEARTBEAT_INTERVAL=%j with an error naming HEARTBEAT_INTERVAL",
    (value) => {
      // An empty variable means unset, so pass the empty case as a flag instead.
      const error = value === "" ? configError({}, { heartbeatInterval: "" }) : configError({ HEARTBEAT_INTERVAL: value });

      expect(error.message).toMatch(value === "" ? "--heartbeat-interval" : "HEARTBEAT_INTERVAL");
      expect(error.message).toContain(`got ${JSON.stringify(value)}`);
      expect(error.message).toMatch(/seconds/);
    },
  );

  it.each(["abc", "-5", "0"])("reject AGENT_TIMEOUT=%j with an error naming AGENT_TIMEOUT", (value) => {
    expect(configError({ AGENT_TIMEOUT: value }).message).toMatch(/^AGENT_TIMEOUT must be a number of seconds/);
  });

  it("reject a bad flag value with an error naming the flag, not the variable", () => {
    const error = configError({ HEARTBEAT_INTERVAL: "30" }, { heartbeatInterval: "often" });

    expect(error.message).toMatch(/^--heartbeat-interval must be/);
  });

  it("accept a whole day, the longest a timer is trusted to wait", () => {
    expect(loadServerConfig({ HEARTBEAT_INTERVAL: "86399", AGENT_TIMEOUT: "86400" }).agentTimeoutMs).toBe(86_400_000);
  });
});

describe("AGENT_TIMEOUT against HEARTBEAT_INTERVAL", () => {
  it("is an error naming both when the timeout equals the interval", () => {
    const error = configError({ HEARTBEAT_INTERVAL: "30", AGENT_TIMEOUT: "30" });

    expect(error.message).toMatch(/AGENT_TIMEOUT \(30 s\) must be greater than HEARTBEAT_INTERVAL \(30 s\)/);
  });

  it("is an error when the timeout is shorter than the interval", () => {
    const error = configError({ HEARTBEAT_INTERVAL: "30", AGENT_TIMEOUT: "10" });

    expect(error.message).toContain("AGENT_TIMEOUT");
    expect(error.message).toContain("HEARTBEAT_INTERVAL");
  });

  it("is an error when the interval alone is raised past the default timeout", () => {
    const error = configError({ HEARTBEAT_INTERVAL: "90" });

    expect(error.message).toMatch(/AGENT_TIMEOUT \(60 s\) must be greater than HEARTBEAT_INTERVAL \(90 s\)/);
  });

  it("names the flag when the timeout was given as one", () => {
    const error = configError({ HEARTBEAT_INTERVAL: "30" }, { agentTimeout: "20" });

    expect(error.message).toMatch(/^--agent-timeout \(20 s\) must be greater than HEARTBEAT_INTERVAL \(30 s\)/);
  });

  it("names both flags when both were given as flags", () => {
    const error = configError({}, { heartbeatInterval: "10", agentTimeout: "5" });

    expect(error.message).toMatch(/^--agent-timeout \(5 s\) must be greater than --heartbeat-interval \(10 s\)/);
  });

  it("is fine when the timeout exceeds the interval by a fraction", () => {
    expect(loadServerConfig({ HEARTBEAT_INTERVAL: "0.2", AGENT_TIMEOUT: "0.3" }).agentTimeoutMs).toBe(300);
  });
});

describe("listen addresses", () => {
  it.each(["50051", "host:", ":50051", "[::1]:99999", "127.0.0.1:65536", "::1:50051", "127.0.0.1:abc", "127.0.0.1:50051:1", "[::1]", "[]:1"])(
    "reject REGISTRY_GRPC_LISTEN=%j with an error naming REGISTRY_GRPC_LISTEN",
    (value) => {
      const error = configError({ REGISTRY_GRPC_LISTEN: value });

      expect(error.message).toMatch(/^REGISTRY_GRPC_LISTEN must be host:port/);
      expect(error.message).toContain(JSON.stringify(value));
    },
  );

  it("reject a bad REGISTRY_HTTP_LISTEN with an error naming it", () => {
    expect(configError({ REGISTRY_HTTP_LISTEN: "nowhere" }).message).toMatch(/^REGISTRY_HTTP_LISTEN must be host:port/);
  });

  it("reject a bad --grpc-listen flag with an error naming the flag", () => {
    expect(configError({}, { grpcListen: "50051" }).message).toMatch(/^--grpc-listen must be host:port/);
  });

  it("parse a bracketed IPv6 host with port 0 (pick a free port)", () => {
    expect(loadServerConfig({ REGISTRY_GRPC_LISTEN: "[::1]:0" }).grpcListen).toEqual({ host: "::1", port: 0 });
  });

  it("parse a host name and the highest port", () => {
    expect(loadServerConfig({ REGISTRY_HTTP_LISTEN: "registry.internal:65535" }).httpListen).toEqual({
      host: "registry.internal",
      port: 65535,
    });
  });

  it("format back to what they parsed from", () => {
    const config = loadServerConfig({ REGISTRY_GRPC_LISTEN: "[::1]:0", REGISTRY_HTTP_LISTEN: "127.0.0.1:50052" });

    expect([formatAddress(config.grpcListen), formatAddress(config.httpListen)]).toEqual(["[::1]:0", "127.0.0.1:50052"]);
  });
});

describe("the data directory", () => {
  it("is taken from --data-dir over REGISTRY_DATA_DIR", () => {
    expect(loadServerConfig({ REGISTRY_DATA_DIR: "/env" }, { dataDir: "/flag" }).dataDir).toBe("/flag");
  });
});

describe("the store", () => {
  it("is the json file, agents.json, with nothing set", () => {
    expect(loadServerConfig({}).store).toBe("json");
  });

  it("is sqlite with REGISTRY_STORE=sqlite, and --store wins over it", () => {
    expect(loadServerConfig({ REGISTRY_STORE: "sqlite" }).store).toBe("sqlite");
    expect(loadServerConfig({ REGISTRY_STORE: "sqlite" }, { store: "json" }).store).toBe("json");
  });

  it("is etcd at the endpoints given, under /agent-registry/ unless told another prefix", () => {
    const config = loadServerConfig({ REGISTRY_STORE: "etcd", REGISTRY_ETCD_ENDPOINTS: "http://10.0.0.1:2379, http://10.0.0.2:2379" });
    expect(config.etcd).toEqual({ endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"], prefix: "/agent-registry/" });
    expect(loadServerConfig({ REGISTRY_STORE: "etcd", REGISTRY_ETCD_ENDPOINTS: "http://h1:2379", REGISTRY_ETCD_PREFIX: "/fleet-a/" }).etcd?.prefix).toBe("/fleet-a/");
  });

  it("follows the whitespace rule: spaces around the word are ignored, a blank variable is unset", () => {
    expect(loadServerConfig({ REGISTRY_STORE: " sqlite\n" }).store).toBe("sqlite");
    expect(loadServerConfig({ REGISTRY_STORE: "  " }).store).toBe("json");
  });

  it.each<{ env: NodeJS.ProcessEnv; flags: ServerFlags; message: string }>([
    { env: { REGISTRY_STORE: "SQLite" }, flags: {}, message: 'REGISTRY_STORE must be json, sqlite or etcd, got "SQLite"' },
    { env: { REGISTRY_STORE: "json" }, flags: { store: "file" }, message: '--store must be json, sqlite or etcd, got "file"' },
    { env: {}, flags: { store: "" }, message: '--store must be json, sqlite or etcd, got ""' },
    {
      env: { REGISTRY_STORE: "etcd" },
      flags: {},
      message: "REGISTRY_ETCD_ENDPOINTS (or --etcd-endpoints) is required with REGISTRY_STORE=etcd: give the etcd cluster's client URLs, e.g. http://127.0.0.1:2379",
    },
    {
      env: { REGISTRY_STORE: "etcd", REGISTRY_ETCD_ENDPOINTS: "https://10.0.0.1:2379" },
      flags: {},
      message: 'REGISTRY_ETCD_ENDPOINTS must be etcd\'s client URLs, comma-separated, each like http://127.0.0.1:2379, got "https://10.0.0.1:2379" (TLS to etcd is not supported yet)',
    },
    { env: { REGISTRY_STORE: "etcd", REGISTRY_ETCD_ENDPOINTS: "http://10.0.0.1:2379", REGISTRY_ETCD_PREFIX: "/fleet" }, flags: {}, message: 'REGISTRY_ETCD_PREFIX must be a key prefix ending with "/", e.g. /agent-registry/, got "/fleet"' },
  ])("refuses $env $flags naming the setting and the accepted values", ({ env, flags, message }) => {
    expect(configError(env, flags).message).toBe(message);
  });
});
