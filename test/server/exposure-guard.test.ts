// The start-up rule for listening beyond loopback (src/server/exposure-guard.ts).

import { describe, expect, it } from "vitest";
import { silentLog } from "../../src/common/log.js";
import { ConfigError, SERVER_DEFAULTS, type ServerConfig, parseTokenList } from "../../src/config/index.js";
import { guardExposure, isLoopback } from "../../src/server/exposure-guard.js";

function config(host: string, security: Partial<ServerConfig["security"]> = {}): ServerConfig {
  return {
    heartbeatIntervalMs: 30_000,
    agentTimeoutMs: 60_000,
    grpcListen: { host, port: 50051 },
    httpListen: { host: "127.0.0.1", port: 50052 },
    dataDir: "/tmp/unused",
    ...SERVER_DEFAULTS,
    security: { ...SERVER_DEFAULTS.security, ...security },
  };
}

function warnings(of: ServerConfig): string[] {
  const logged: string[] = [];
  guardExposure(of, { ...silentLog, warn: (_fields, message) => logged.push(message) });
  return logged;
}

describe("listening beyond loopback", () => {
  it("counts 127.0.0.0/8, ::1 and localhost as loopback, and nothing else", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"]) expect(isLoopback({ host, port: 1 })).toBe(true);
    for (const host of ["0.0.0.0", "::", "10.0.0.5", "registry.internal", "::ffff:10.0.0.5"]) expect(isLoopback({ host, port: 1 })).toBe(false);
  });

  it("is silent on loopback with authentication off", () => {
    expect(warnings(config("127.0.0.1"))).toEqual([]);
  });

  it("is refused with authentication off, naming the listener and the ways out", () => {
    expect(() => warnings(config("0.0.0.0"))).toThrow(ConfigError);
    expect(() => warnings(config("0.0.0.0"))).toThrow(/0\.0\.0\.0:50051 \(--grpc-listen\).*--insecure-allow-unauthenticated/);
  });

  it("is warned about when explicitly allowed, and when tokens would cross the network without TLS", () => {
    expect(warnings(config("0.0.0.0", { allowUnauthenticated: true }))).toEqual([expect.stringContaining("with authentication off")]);
    const tokens = parseTokenList(`reader:${"r".repeat(16)}`, "test");
    expect(warnings(config("0.0.0.0", { tokens }))).toEqual([expect.stringContaining("without TLS")]);
    const tls = { certFile: "s.crt", keyFile: "s.key", clientCaFile: undefined };
    expect(warnings(config("0.0.0.0", { tokens, tls }))).toEqual([]);
  });
});
