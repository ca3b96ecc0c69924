// Who may read the server's internals in answers (src/server/disclosure.ts): anyone only while every
// listener is on loopback and authentication is off; otherwise admins only.

import { describe, expect, it } from "vitest";
import { NO_SECURITY, type SecurityConfig, parseTokenList } from "../../src/config/index.js";
import { Disclosure } from "../../src/server/disclosure.js";

const LOOPBACK = { host: "127.0.0.1", port: 50051 };
const EVERYWHERE = { host: "0.0.0.0", port: 50052 };
const TOKENS: SecurityConfig = { ...NO_SECURITY, tokens: parseTokenList(`reader:${"r".repeat(20)}`, "REGISTRY_TOKENS") };
const INSECURE: SecurityConfig = { ...NO_SECURITY, allowUnauthenticated: true };

describe("disclosure", () => {
  it("tells anyone the details on loopback with authentication off", () => {
    const disclosure = Disclosure.of({ grpcListen: LOOPBACK, httpListen: { host: "::1", port: 0 }, security: NO_SECURITY });

    expect([disclosure.toAnyone, disclosure.toCaller({ role: undefined })]).toEqual([true, true]);
  });

  it.each([
    { where: "authentication is on", config: { grpcListen: LOOPBACK, httpListen: LOOPBACK, security: TOKENS } },
    { where: "the HTTP listener is beyond loopback", config: { grpcListen: LOOPBACK, httpListen: EVERYWHERE, security: INSECURE } },
    { where: "the gRPC listener is beyond loopback", config: { grpcListen: EVERYWHERE, httpListen: LOOPBACK, security: INSECURE } },
  ])("tells only admins when $where", ({ config }) => {
    const disclosure = Disclosure.of(config);

    expect(disclosure.toAnyone).toBe(false);
    expect(["agent", "reader", undefined].map((role) => disclosure.toCaller({ role: role as "agent" | "reader" | undefined }))).toEqual([
      false,
      false,
      false,
    ]);
    expect(disclosure.toCaller({ role: "admin" })).toBe(true);
  });
});
