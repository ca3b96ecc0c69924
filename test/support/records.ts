// A plain agent record for the table and query tests: `hostname` and `id` (the sort keys), the rest fixed
// unless overridden.

import type { AgentId } from "../../src/registry/agent-id.js";
import type { AgentRecord } from "../../src/registry/agent.js";

export function record(hostname: string, id: string, overrides: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id: id as AgentId,
    hostname,
    ipAddress: "10.0.0.1",
    port: 11434,
    ollamaVersion: "0.5.7",
    status: "online",
    lastHeartbeat: 0,
    registeredAt: 0,
    labels: {},
    draining: false,
    streamConnected: false,
    livenessHeld: false,
    ...overrides,
  };
}
