// The replies both echo servers send: the same messages, shapes and serializers as the registry's
// (RegisterResponse with an ONLINE agent; one HeartbeatResponse per beat echoing seq with server_time,
// status and heartbeat_interval), with no registry, no liveness, no store and no metrics behind them.

import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import {
  AgentStatus,
  type HeartbeatRequest,
  type HeartbeatResponse,
  HeartbeatResponseSchema,
  type RegisterRequest,
  type RegisterResponse,
  RegisterResponseSchema,
} from "../gen/registry/v1/registry_pb.js";

const INTERVAL = create(DurationSchema, { seconds: 1n });
const TIMEOUT = create(DurationSchema, { seconds: 10n });

export function registerReply(request: RegisterRequest): RegisterResponse {
  const now = timestampFromMs(Date.now());
  return create(RegisterResponseSchema, {
    agent: {
      id: request.agentId === "" ? randomUUID() : request.agentId,
      hostname: request.hostname,
      ipAddress: request.ipAddress === "" ? "127.0.0.1" : request.ipAddress,
      port: request.port === 0 ? 11434 : request.port,
      ollamaVersion: request.ollamaVersion,
      status: AgentStatus.ONLINE,
      lastHeartbeat: now,
      registeredAt: now,
      labels: request.labels,
    },
    heartbeatInterval: INTERVAL,
    agentTimeout: TIMEOUT,
  });
}

export function beatReply(request: HeartbeatRequest): HeartbeatResponse {
  return create(HeartbeatResponseSchema, {
    seq: request.seq,
    serverTime: timestampFromMs(Date.now()),
    status: AgentStatus.ONLINE,
    heartbeatInterval: INTERVAL,
  });
}
