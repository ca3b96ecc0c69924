import { describe, expect, it } from "vitest";
import { type RegistrationInput, parseRegistration } from "../../src/registry/registration.js";
import { RegistryError } from "../../src/registry/registry-error.js";

const ID = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";

function input(overrides: Partial<RegistrationInput> = {}): RegistrationInput {
  return {
    agentId: ID,
    hostname: "gpu-01.lab.example",
    ipAddress: "10.0.0.7",
    port: 11434,
    ollamaVersion: "0.5.7",
    labels: { gpu: "a100", zone: "eu-west" },
    ...overrides,
  };
}

/** The error parseRegistration throws for `overrides`; fails the test if it does not throw one. */
function rejection(overrides: Partial<RegistrationInput>): RegistryError {
  try {
    parseRegistration(input(overrides));
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error(`parseRegistration accepted ${JSON.stringify(overrides)}`);
}

function expectInvalid(overrides: Partial<RegistrationInput>, field: string): void {
  const error = rejection(overrides);
  expect(error.kind).toBe("invalidArgument");
  expect(error.message).toMatch(new RegExp(`^${field}: `));
}

describe("parseRegistration", () => {
  it("accepts a well-formed registration as it is", () => {
    expect(parseRegistration(input())).toEqual({
      id: ID,
      hostname: "gpu-01.lab.example",
      ipAddress: "10.0.0.7",
      port: 11434,
      ollamaVersion: "0.5.7",
      labels: { gpu: "a100", zone: "eu-west" },
    });
  });

  describe("agent_id", () => {
    it("leaves the id to the server when it is empty", () => {
      expect(parseRegistration(input({ agentId: "" })).id).toBeUndefined();
    });

    it("lower-cases an upper-case UUID", () => {
      expect(parseRegistration(input({ agentId: ID.toUpperCase() })).id).toBe(ID);
    });

    it("accepts a UUID of another version than 4 (a node may choose its own)", () => {
      const v7 = "01890a5d-ac96-774b-bcce-b302099a8057";
      expect(parseRegistration(input({ agentId: v7 })).id).toBe(v7);
    });

    it("rejects a string that is not a UUID", () => {
      expectInvalid({ agentId: "node-1" }, "agent_id");
      expect(rejection({ agentId: "node-1" }).message).toContain('"node-1"');
    });

    it("rejects the nil UUID", () => {
      expectInvalid({ agentId: "00000000-0000-0000-0000-000000000000" }, "agent_id");
    });

    it("rejects the max UUID", () => {
      expectInvalid({ agentId: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF" }, "agent_id");
    });
  });

  describe("hostname", () => {
    it("is required", () => {
      expectInvalid({ hostname: "" }, "hostname");
    });

    it("accepts 253 characters but not 254", () => {
      const part = "a".repeat(63);
      const longest = [part, part, part, "a".repeat(61)].join("."); // 63*3 + 61 + 3 dots = 253
      expect(longest).toHaveLength(253);
      expect(parseRegistration(input({ hostname: longest })).hostname).toBe(longest);

      expectInvalid({ hostname: `${longest}a` }, "hostname");
      expect(rejection({ hostname: `${longest}a` }).message).toContain("254");
    });

    it("rejects a name with spaces", () => {
      expectInvalid({ hostname: "gpu 01" }, "hostname");
    });

    it("rejects a part longer than 63 characters", () => {
      expectInvalid({ hostname: `${"a".repeat(64)}.example` }, "hostname");
    });

    it("rejects an empty part", () => {
      expectInvalid({ hostname: "gpu..example" }, "hostname");
    });

    it("accepts a fully qualified name with a trailing dot", () => {
      expect(parseRegistration(input({ hostname: "gpu-01.example." })).hostname).toBe("gpu-01.example.");
    });
  });

  describe("ip_address", () => {
    it("leaves the address to the server (the peer address) when it is empty", () => {
      expect(parseRegistration(input({ ipAddress: "" })).ipAddress).toBeUndefined();
    });

    it.each(["300.1.1.1", "abc", "10.0.0", "10.0.0.1:11434"])("rejects the malformed address %s", (ipAddress) => {
      expectInvalid({ ipAddress }, "ip_address");
      expect(rejection({ ipAddress }).message).toContain(JSON.stringify(ipAddress));
    });

    it("accepts an IPv6 address, in lower case", () => {
      expect(parseRegistration(input({ ipAddress: "FD00::1" })).ipAddress).toBe("fd00::1");
    });

    it("turns an IPv4-mapped IPv6 address into plain IPv4", () => {
      expect(parseRegistration(input({ ipAddress: "::ffff:10.0.0.1" })).ipAddress).toBe("10.0.0.1");
      expect(parseRegistration(input({ ipAddress: "::FFFF:10.0.0.1" })).ipAddress).toBe("10.0.0.1");
    });
  });

  describe("port", () => {
    it("defaults 0 to Ollama's port 11434", () => {
      expect(parseRegistration(input({ port: 0 })).port).toBe(11434);
    });

    it.each([70_000, 65_536, -1, 80.5])("rejects port %d", (port) => {
      expectInvalid({ port }, "port");
    });

    it("accepts the ends of the range", () => {
      expect(parseRegistration(input({ port: 1 })).port).toBe(1);
      expect(parseRegistration(input({ port: 65_535 })).port).toBe(65_535);
    });
  });

  describe("ollama_version", () => {
    it("rejects control characters", () => {
      expectInvalid({ ollamaVersion: "0.5\n" }, "ollama_version");
    });

    it("rejects more than 128 characters", () => {
      expectInvalid({ ollamaVersion: "1".repeat(129) }, "ollama_version");
    });

    it("rejects a lone UTF-16 surrogate, which no UTF-8 file or message can hold", () => {
      expectInvalid({ ollamaVersion: "0.5\ud800" }, "ollama_version");
    });

    it("rejects U+FFFD, what bytes that are not UTF-8 decode to, saying so", () => {
      expectInvalid({ ollamaVersion: "0.5\ufffd" }, "ollama_version");
      expect(rejection({ ollamaVersion: "0.5\ufffd" }).message).toContain("bytes that are not UTF-8");
    });
  });

  describe("labels", () => {
    it("accepts 64 labels but not 65", () => {
      const labels = (count: number): Record<string, string> =>
        Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, "v"]));
      expect(Object.keys(parseRegistration(input({ labels: labels(64) })).labels)).toHaveLength(64);
      expectInvalid({ labels: labels(65) }, "labels");
      expect(rejection({ labels: labels(65) }).message).toContain("65");
    });

    it.each(["-gpu", "gpu-", "has space", "", "k".repeat(64), "gpu=a"])("rejects the key %j", (key) => {
      expectInvalid({ labels: { [key]: "v" } }, "labels");
    });

    it("accepts keys with dots, slashes, dashes and underscores inside", () => {
      const labels = { "example.com/gpu_model-name": "a100" };
      expect(parseRegistration(input({ labels })).labels).toEqual(labels);
    });

    it.each(["a100,h100", "a b", "x=y", "v".repeat(256)])("rejects the value %j", (value) => {
      expectInvalid({ labels: { gpu: value } }, "labels");
      expect(rejection({ labels: { gpu: value } }).message).toContain('"gpu"');
    });

    it.each(["a\ud800", "\udfffa"])("rejects the value %j with a lone surrogate, but accepts emoji", (value) => {
      expectInvalid({ labels: { gpu: value } }, "labels");
      expect(parseRegistration(input({ labels: { gpu: "a100-😀" } })).labels).toEqual({ gpu: "a100-😀" });
    });

    it("rejects a value holding U+FFFD, what bytes that are not UTF-8 decode to, saying so", () => {
      expectInvalid({ labels: { gpu: "a\ufffd" } }, "labels");
      expect(rejection({ labels: { gpu: "a\ufffd" } }).message).toContain("bytes that are not UTF-8");
    });

    it("accepts an empty value", () => {
      expect(parseRegistration(input({ labels: { spare: "" } })).labels).toEqual({ spare: "" });
    });

    it("returns labels sorted by key", () => {
      const labels = parseRegistration(input({ labels: { zone: "eu", gpu: "a100", arch: "x86" } })).labels;
      expect(Object.keys(labels)).toEqual(["arch", "gpu", "zone"]);
    });
  });
});
