// Who holds an agent id: the node whose first Register got the id's secret. When enforced (the server turns
// it on with authentication), Register, a Heartbeat stream and Deregister of an id that holds a secret need
// that secret; an admin may deregister any id. An id without a secret gets one at its next Register (trust
// on first use). Decides only; the command layer commits what it decides.

import type { AgentId } from "./agent-id.js";
import type { AgentRecord } from "./agent.js";
import type { AgentSecrets, SecretHash } from "./agent-secret.js";
import { RegistryError } from "./registry-error.js";

/** Who asks to deregister an agent: the node itself (proven by its secret), or an admin. */
export interface DeregisterProof {
  readonly secret?: string | undefined;
  /** An admin may deregister any agent without its secret (that is how a lost secret's id is released). */
  readonly admin?: boolean | undefined;
}

export class IdOwnership {
  constructor(
    private readonly secrets: AgentSecrets,
    /**
     * Without it anyone may do anything anyway; secrets are issued and stored either way, so turning
     * authentication on later protects the agents registered before.
     */
    private readonly enforced: boolean,
  ) {}

  /** A new secret for an id that has none yet (a new agent, or one from before secrets existed). */
  issueFor(existing: AgentRecord | undefined): { readonly secret: string; readonly hash: SecretHash } | undefined {
    return existing?.secretHash === undefined ? this.secrets.issue() : undefined;
  }

  checkRegister(existing: AgentRecord | undefined, secret: string | undefined): void {
    if (existing !== undefined) this.check(existing, secret, "Register");
  }

  checkStream(record: AgentRecord, secret: string | undefined): void {
    if (this.enforced && record.secretHash === undefined) {
      // Nothing proves the caller is that node; its Register (which the daemon always sends first) gives it one.
      throw new RegistryError(
        "permissionDenied",
        `agent ${record.id} has no secret yet (registered before this server issued secrets): call Register for it first, then open the Heartbeat stream with the agent_secret it returns`,
      );
    }
    this.check(record, secret, "a Heartbeat stream");
  }

  checkDeregister(record: AgentRecord, proof: DeregisterProof): void {
    if (proof.admin === true) return;
    if (this.enforced && record.secretHash === undefined) {
      throw new RegistryError(
        "permissionDenied",
        `agent ${record.id} has no secret yet (it was registered before this server issued secrets; it gets one at its next Register), so nothing proves the caller is that node: only an admin may deregister it`,
      );
    }
    this.check(record, proof.secret, "Deregister");
  }

  /** Refuses `what` unless `secret` is the agent's; an agent without a stored secret passes. */
  private check(record: AgentRecord, secret: string | undefined, what: string): void {
    const hash = record.secretHash;
    if (!this.enforced || hash === undefined) return;
    const missing = secret === undefined || secret === "";
    if (!missing && this.secrets.matches(secret, hash)) return;
    throw heldByAnotherNode(record.id, what, missing);
  }
}

function heldByAnotherNode(id: AgentId, what: string, missing: boolean): RegistryError {
  return new RegistryError(
    "permissionDenied",
    `agent ${id} is held by another node's secret: ${what} of this id needs the agent_secret its first Register returned, and ${missing ? "none was sent" : "the one sent does not match"}. ` +
      `A node that lost its secret (its state file) cannot get it back: an admin deregisters ${id} to release the id (agent-registry deregister ${id} with an admin token), then the node registers again`,
  );
}
