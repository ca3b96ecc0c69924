// Per-agent secrets: the first Register of an id gets a random secret, and only its hash is kept, so the
// file never holds a secret that would let its reader take over a node. Hashing and comparing are pure
// computation and randomness is injected like ids are (RegistryOptions.secrets), so node:crypto sits here
// behind a small port rather than in server/; the registry decides when a secret is needed.

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** "sha256:" and 64 lower-case hex digits: the SHA-256 digest of the secret's UTF-8 bytes. */
export type SecretHash = string & { readonly __brand: "SecretHash" };

const HASH_FORMAT = /^sha256:[0-9a-f]{64}$/;

export function isSecretHash(text: string): text is SecretHash {
  return HASH_FORMAT.test(text);
}

export interface AgentSecrets {
  /** A new secret and its hash. */
  issue(): { readonly secret: string; readonly hash: SecretHash };
  /** Whether `secret` is the one `hash` was made from; in time that does not depend on where they differ. */
  matches(secret: string, hash: SecretHash): boolean;
}

/** 32 random bytes as base64url (43 characters), hashed with SHA-256. */
export const cryptoAgentSecrets: AgentSecrets = {
  issue() {
    const secret = randomBytes(32).toString("base64url");
    return { secret, hash: hashSecret(secret) };
  },
  matches(secret, hash) {
    const expected = Buffer.from(hash.slice("sha256:".length), "hex");
    // Both sides are 32-byte digests, so timingSafeEqual never sees a length difference to leak.
    return timingSafeEqual(createHash("sha256").update(secret, "utf8").digest(), expected);
  },
};

export function hashSecret(secret: string): SecretHash {
  return `sha256:${createHash("sha256").update(secret, "utf8").digest("hex")}` as SecretHash;
}
