// Agent ids: RFC 4122 UUIDs in lower case. Nodes may choose their own (any version); the server makes v4.
// What counts as an id is shared with the node daemon (common/registration-rules.ts).

import { v4 } from "uuid";
import { isAgentId } from "../common/registration-rules.js";
import { invalidArgument } from "./registry-error.js";

export type AgentId = string & { readonly __brand: "AgentId" };

/** Parses a client-supplied id; `field` names the request field in the error. */
export function parseAgentId(text: string, field = "agent_id"): AgentId {
  if (text === "") throw invalidArgument(field, "is required");
  if (!isAgentId(text)) {
    throw invalidArgument(
      field,
      `must be a UUID such as 3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30, got ${JSON.stringify(text.slice(0, 64))}`,
    );
  }
  return text.toLowerCase() as AgentId;
}

export const newAgentId = (): AgentId => v4() as AgentId;
