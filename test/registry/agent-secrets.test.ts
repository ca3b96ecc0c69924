// Per-agent secrets in the domain: the first Register of an id gets one and the store keeps only its hash;
// when enforced, Register, Heartbeat and Deregister of that id need it (an admin deregisters without);
// an id without a hash gets one at its next Register (trust on first use).

import { afterEach, describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";
import { type AgentSecrets, type SecretHash, cryptoAgentSecrets, hashSecret, isSecretHash } from "../../src/registry/agent-secret.js";
import { parseRegistration } from "../../src/registry/registration.js";
import { RegistryError } from "../../src/registry/registry-error.js";
import { Registry } from "../../src/registry/registry.js";
import { anAgent } from "../store/agent-records.js";
import { FAKE_EPOCH, FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";

const ID = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30" as AgentId;
const PEER = "192.0.2.10";

/** Secrets "secret-1", "secret-2", ... so tests can tell them apart. */
function countingSecrets(): AgentSecrets {
  let issued = 0;
  return {
    issue() {
      const secret = `secret-${++issued}`;
      return { secret, hash: hashSecret(secret) };
    },
    matches: (secret, hash) => cryptoAgentSecrets.matches(secret, hash),
  };
}

const opened: Registry[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function openRegistry(options: { enforce?: boolean; records?: AgentRecord[] } = {}): Promise<{ store: MemoryStore; registry: Registry }> {
  const store = new MemoryStore(options.records ?? []);
  const registry = await Registry.open({
    store,
    clock: new FakeClock(),
    heartbeatIntervalMs: 30_000,
    agentTimeoutMs: 60_000,
    secrets: countingSecrets(),
    enforceSecrets: options.enforce ?? true,
  });
  opened.push(registry);
  return { store, registry };
}

const registration = (hostname = "gpu-01") =>
  parseRegistration({ agentId: ID, hostname, ipAddress: "10.0.0.7", port: 0, ollamaVersion: "0.5.7", labels: {} });

async function refusal(promise: Promise<unknown> | (() => unknown)): Promise<RegistryError> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error("expected a RegistryError, got none");
}

describe("agent secrets", () => {
  it("are 32 random bytes in base64url, and their hash is sha256:<hex>", () => {
    const { secret, hash } = cryptoAgentSecrets.issue();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secret, "base64url")).toHaveLength(32);
    expect(isSecretHash(hash)).toBe(true);
    expect(cryptoAgentSecrets.matches(secret, hash)).toBe(true);
    expect(cryptoAgentSecrets.matches(`${secret}x`, hash)).toBe(false);
    expect(cryptoAgentSecrets.issue().secret).not.toBe(secret);
  });

  it("are issued by the first Register of an id, and only their hash is stored", async () => {
    const { store, registry } = await openRegistry();
    const { agent, secret } = await registry.register(registration(), PEER);
    expect(secret).toBe("secret-1");
    expect(store.get(ID)?.secretHash).toBe(hashSecret("secret-1"));
    expect(JSON.stringify(store.get(ID))).not.toContain("secret-1\"");
    expect(agent).not.toHaveProperty("secretHash");
    expect(registry.get(ID)).not.toHaveProperty("secretHash");
  });

  it("are not issued again to a Register that proves the id", async () => {
    const { registry } = await openRegistry();
    await registry.register(registration(), PEER);
    const again = await registry.register(registration("gpu-01b"), PEER, "secret-1");
    expect(again.secret).toBeUndefined();
    expect(again.agent.hostname).toBe("gpu-01b");
  });

  describe("when enforced", () => {
    it("refuse a Register, a Heartbeat and a Deregister of a held id without its secret, saying what to do", async () => {
      const { store, registry } = await openRegistry();
      await registry.register(registration(), PEER);
      const before = store.get(ID);

      for (const attempt of [
        () => registry.register(registration("evil"), PEER),
        () => registry.register(registration("evil"), PEER, "secret-2"),
        () => registry.openHeartbeat(ID, () => undefined),
        () => registry.openHeartbeat(ID, () => undefined, "wrong"),
        () => registry.deregister(ID),
        () => registry.deregister(ID, { secret: "wrong" }),
      ]) {
        const error = await refusal(attempt);
        expect(error.kind).toBe("permissionDenied");
        expect(error.message).toMatch(new RegExp(`^agent ${ID} is held by another node's secret: .* needs the agent_secret its first Register returned`));
        expect(error.message).toContain(`an admin deregisters ${ID} to release the id`);
      }
      expect(store.get(ID)).toEqual(before);
      expect(registry.get(ID).hostname).toBe("gpu-01");
    });

    it("let the holder beat and deregister, and an admin deregister without the secret", async () => {
      const { registry } = await openRegistry();
      await registry.register(registration(), PEER);
      registry.openHeartbeat(ID, () => undefined, "secret-1").close();
      await registry.deregister(ID, { secret: "secret-1" });

      await registry.register(registration(), PEER);
      await registry.deregister(ID, { admin: true });
      expect(registry.size).toBe(0);
    });

    it("give an id without a hash (from the prototype's file) one at its next Register, and until then refuse its beats and let only an admin deregister it", async () => {
      const record = anAgent({ id: ID, hostname: "gpu-01", ipAddress: "10.0.0.7", ollamaVersion: "0.5.7", status: "online", lastHeartbeat: FAKE_EPOCH, registeredAt: FAKE_EPOCH });
      const { store, registry } = await openRegistry({ records: [record] });
      expect((await refusal(registry.deregister(ID))).message).toContain("only an admin may deregister it");
      // Nor may anyone beat for it: that would let any agent token supersede or end the real node's stream.
      expect((await refusal(() => registry.openHeartbeat(ID, () => undefined))).kind).toBe("permissionDenied");

      const { secret } = await registry.register(registration(), PEER);
      expect(secret).toBe("secret-1");
      expect(store.get(ID)?.secretHash).toBe(hashSecret("secret-1"));
      expect((await refusal(registry.register(registration("evil"), PEER))).kind).toBe("permissionDenied");
    });
  });

  it("are issued once per id when another writer registers the same id first: the loser is decided again, and refused", async () => {
    const { store, registry } = await openRegistry();
    const theirs = anAgent({ id: ID, hostname: "gpu-theirs", ipAddress: "10.0.0.9", ollamaVersion: "", status: "online", lastHeartbeat: FAKE_EPOCH, registeredAt: FAKE_EPOCH, secretHash: hashSecret("their-secret") });
    store.holdWrites();
    const winner = store.commit([{ put: theirs, expectedRevision: 0 }]);
    const loser = registry.register(registration("gpu-ours"), PEER);
    store.releaseWrites();
    await winner;

    const refused = await refusal(loser);

    expect(refused.kind).toBe("permissionDenied");
    expect(refused.message).toContain(`agent ${ID} is held by another node's secret`);
    expect(store.get(ID)).toMatchObject({ hostname: "gpu-theirs", secretHash: hashSecret("their-secret") });
  });

  it("are issued and stored but not asked for when not enforced", async () => {
    const { store, registry } = await openRegistry({ enforce: false });
    await registry.register(registration(), PEER);
    const again = await registry.register(registration("gpu-01b"), PEER, "wrong");
    expect(again.secret).toBeUndefined();
    expect(store.get(ID)?.secretHash).toBe(hashSecret("secret-1"));
    registry.openHeartbeat(ID, () => undefined).close();
    await registry.deregister(ID);
  });

  it("are not kept when the Register that issued one to a known agent was not written, so its retry gets one", async () => {
    const record = anAgent({ id: ID, hostname: "gpu-01", ipAddress: "10.0.0.7", ollamaVersion: "", status: "offline", lastHeartbeat: FAKE_EPOCH, registeredAt: FAKE_EPOCH });
    const { store, registry } = await openRegistry({ records: [record] });
    store.failNextWrites(1);
    expect((await refusal(registry.register(registration(), PEER))).kind).toBe("unavailable");

    const { secret } = await registry.register(registration(), PEER);
    expect(secret).toBe("secret-2");
    expect(store.get(ID)?.secretHash).toBe(hashSecret("secret-2") as SecretHash);
  });
});
