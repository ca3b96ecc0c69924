// Small builders for wire Agents in CLI formatting tests.

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Agent, AgentSchema, AgentStatus } from "../../gen/registry/v1/registry_pb.js";

/** The fixed "now" of formatting tests: 2026-11-27T01:02:03Z. */
export const NOW = Date.parse("2026-11-27T01:02:03Z");

export function agent(fields: MessageInitShape<typeof AgentSchema> = {}): Agent {
  return create(AgentSchema, {
    id: "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30",
    hostname: "gpu-01",
    ipAddress: "10.0.0.1",
    port: 11434,
    ollamaVersion: "0.5.7",
    status: AgentStatus.ONLINE,
    lastHeartbeat: timestampFromMs(NOW - 4_000),
    registeredAt: timestampFromMs(NOW - 2 * 3600_000),
    labels: { gpu: "a100" },
    ...fields,
  });
}

export const secondsAgo = (seconds: number): ReturnType<typeof timestampFromMs> => timestampFromMs(NOW - seconds * 1000);
