// The bearer tokens the server accepts, each with its role. Only SHA-256 digests are kept in memory, and a
// lookup compares the presented token's digest with every known one in constant time (no early exit, equal
// lengths), so neither the comparison nor its timing tells a caller how close a guess came.

import { createHash, timingSafeEqual } from "node:crypto";
import { ROLES, type Role, type RoleToken, checkUnique } from "../config/index.js";

export class TokenSet {
  private readonly entries: ReadonlyArray<{ readonly digest: Buffer; readonly role: Role }>;

  /** Throws a ConfigError naming both places if a token is given twice. */
  constructor(tokens: readonly RoleToken[]) {
    checkUnique(tokens);
    this.entries = tokens.map(({ token, role }) => ({ digest: digest(token), role }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** How many tokens each role has, for the log. */
  counts(): Record<Role, number> {
    const counts = Object.fromEntries(ROLES.map((role) => [role, 0])) as Record<Role, number>;
    for (const entry of this.entries) counts[entry.role]++;
    return counts;
  }

  /** The role of `token`, or undefined if the server does not know it. */
  roleOf(token: string): Role | undefined {
    const presented = digest(token);
    let role: Role | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presented)) role = entry.role;
    }
    return role;
  }
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}
