// Agent ids: RFC 4122 UUIDs in lower case. Nodes may choose their own (any version); the server makes v4.

import { validate, v4 } from "uuid";
import { invalidArgument } from "./registry-error.js";

export type AgentId = string & { readonly __brand: "AgentId" };

const NIL = "00000000-0000-0000-0000-000000000000";
const MAX = "ffffffff-ffff-ffff-ffff-ffffffffffff";

/** Whether `text` is a usable agent id (a UUID other than the nil and max UUIDs), in any case. */
export function isAgentId(text: string): boolean {
  const lower = text.toLowerCase();
  return validate(lower) && lower !== NIL && lower !== MAX;
}

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
