// The Authorizer (src/server/authorizer.ts): one check for both listeners, from a bearer token or a client
// certificate's OU to a role, and from the role to the methods it may call.

import { describe, expect, it } from "vitest";
import { RegistryError } from "../../src/registry/registry-error.js";
import { type Role, parseTokenList } from "../../src/config/index.js";
import { Authorizer, type CallCredentials, type ClientCertificate, PERMISSIONS, clientCertificateOf } from "../../src/server/authorizer.js";
import { TokenSet } from "../../src/server/token-set.js";

const TOKEN: Record<Role, string> = { agent: "agent-token-0000000001", reader: "reader-token-000000001", admin: "admin-token-0000000001" };
const tokens = new TokenSet(parseTokenList(`agent:${TOKEN.agent},reader:${TOKEN.reader},admin:${TOKEN.admin}`, "test"));
const METHODS = Object.keys(PERMISSIONS);

function bearer(token: string): CallCredentials {
  return { authorization: `Bearer ${token}`, clientCertificate: undefined };
}

function refusal(run: () => unknown): RegistryError {
  try {
    run();
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("the Authorizer", () => {
  const authorizer = new Authorizer(tokens, { enabled: true, clientCertificates: false });

  it("lets anyone do anything when authentication is off", () => {
    const off = new Authorizer(tokens, { enabled: false, clientCertificates: false });
    for (const method of METHODS) expect(off.authorize(method, { authorization: undefined, clientCertificate: undefined })).toEqual({ role: undefined });
  });

  it.each([
    ["agent", ["Register", "Heartbeat", "Deregister"]],
    ["reader", ["ListAgents", "GetAgent", "WatchAgents"]],
    ["admin", METHODS],
  ] as Array<[Role, string[]]>)("gives the %s role exactly %j", (role, allowed) => {
    for (const method of METHODS) {
      if (allowed.includes(method)) expect(authorizer.authorize(method, bearer(TOKEN[role]))).toEqual({ role });
      else expect(refusal(() => authorizer.authorize(method, bearer(TOKEN[role]))).kind).toBe("permissionDenied");
    }
  });

  it("refuses a missing, malformed or unknown token as unauthenticated", () => {
    for (const credentials of [
      { authorization: undefined, clientCertificate: undefined },
      { authorization: TOKEN.admin, clientCertificate: undefined },
      { authorization: `Token ${TOKEN.admin}`, clientCertificate: undefined },
      bearer(`${TOKEN.admin}x`),
      bearer(TOKEN.admin.slice(0, -1)),
    ]) {
      const error = refusal(() => authorizer.authorize("ListAgents", credentials));
      expect(error.kind).toBe("unauthenticated");
      expect(error.message).not.toContain(TOKEN.admin);
    }
  });

  it("refuses a method it does not know, whatever the role", () => {
    expect(refusal(() => authorizer.authorize("DropEverything", bearer(TOKEN.admin))).kind).toBe("permissionDenied");
  });

  it("uses new tokens once they replace the old ones", () => {
    const reloading = new Authorizer(tokens, { enabled: true, clientCertificates: false });
    reloading.replaceTokens(new TokenSet(parseTokenList(`reader:${"n".repeat(16)}`, "file")));
    expect(reloading.authorize("ListAgents", bearer("n".repeat(16)))).toEqual({ role: "reader" });
    expect(refusal(() => reloading.authorize("ListAgents", bearer(TOKEN.reader))).kind).toBe("unauthenticated");
  });

  describe("with client certificates (mutual TLS)", () => {
    const mtls = new Authorizer(tokens, { enabled: true, clientCertificates: true });
    const certificate = (role: Role | undefined, verified = true): ClientCertificate => ({ verified, role, commonName: "gpu-01" });

    it("takes the role from the certificate when no token is sent, and the token's when one is", () => {
      expect(mtls.authorize("ListAgents", { authorization: undefined, clientCertificate: certificate("reader") })).toEqual({ role: "reader" });
      expect(mtls.authorize("Register", { authorization: `Bearer ${TOKEN.agent}`, clientCertificate: certificate("reader") })).toEqual({ role: "agent" });
    });

    it("refuses a call without a verified certificate, even with a good token", () => {
      for (const clientCertificate of [undefined, certificate("admin", false)]) {
        expect(refusal(() => mtls.authorize("ListAgents", { authorization: `Bearer ${TOKEN.admin}`, clientCertificate })).kind).toBe("unauthenticated");
      }
    });

    it("wants a token from a certificate that names no role", () => {
      const error = refusal(() => mtls.authorize("ListAgents", { authorization: undefined, clientCertificate: certificate(undefined) }));
      expect([error.kind, error.message]).toEqual(["unauthenticated", expect.stringContaining("CN=gpu-01 names no role")]);
    });
  });
});

describe("a client certificate's role", () => {
  const peer = (subject: Record<string, string | string[]>) =>
    ({ raw: Buffer.from("x"), subject }) as unknown as Parameters<typeof clientCertificateOf>[0];

  it("is its subject's OU when that names one role", () => {
    expect(clientCertificateOf(peer({ OU: "reader", CN: "dash" }), true)).toEqual({ verified: true, role: "reader", commonName: "dash" });
    expect(clientCertificateOf(peer({ OU: ["team-a", "agent"] }), true)?.role).toBe("agent");
  });

  it("is none when the OU names no role or more than one", () => {
    expect(clientCertificateOf(peer({ OU: "ops" }), true)?.role).toBeUndefined();
    expect(clientCertificateOf(peer({ OU: ["reader", "admin"] }), true)?.role).toBeUndefined();
  });

  it("is not there without a certificate", () => {
    expect(clientCertificateOf(undefined, false)).toBeUndefined();
    expect(clientCertificateOf({} as Parameters<typeof clientCertificateOf>[0], false)).toBeUndefined();
  });
});

describe("the token set", () => {
  it("knows each token's role and counts them, and refuses a token given twice", () => {
    expect(tokens.roleOf(TOKEN.reader)).toBe("reader");
    expect(tokens.roleOf("nope")).toBeUndefined();
    expect(tokens.counts()).toEqual({ agent: 1, reader: 1, admin: 1 });
    expect(() => new TokenSet(parseTokenList(`agent:${TOKEN.agent}`, "a").concat(parseTokenList(`admin:${TOKEN.agent}`, "b")))).toThrow(
      /^b entry 1: the same token as a entry 1/,
    );
  });
});
