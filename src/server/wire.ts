// Wire messages <-> domain values for the registry.v1 API. Every request field is parsed here, once,
// into a typed domain value (or an invalidArgument error naming the field).

import { create } from "@bufbuild/protobuf";
import { DurationSchema, type Duration, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Agent,
  AgentSchema,
  AgentStatus,
  type ListAgentsRequest,
  type RegisterRequest,
  WatchEventType,
  type WatchAgentsResponse,
  WatchAgentsResponseSchema,
} from "../../gen/registry/v1/registry_pb.js";
import type { WatchEvent } from "../registry/watcher.js";
import type { AgentStatus as DomainStatus, AgentView } from "../registry/agent.js";
import { type AgentFilter, type ListQuery, parseLabelSelector, parsePageSize, parsePageToken } from "../registry/agent-query.js";
import { type Registration, parseRegistration } from "../registry/registration.js";
import { invalidArgument } from "../registry/registry-error.js";
import { gpuToWire, inventoryFromWire, modelToWire } from "../common/inventory-wire.js";

/**
 * Protobuf JSON as the HTTP listener reads and writes it: strict input (an unknown field or enum name is
 * INVALID_ARGUMENT, not silently "any"), and full output (curl users see streamConnected: false rather than
 * a missing key).
 */
export const HTTP_JSON_OPTIONS = { ignoreUnknownFields: false, alwaysEmitImplicit: true } as const;

export function agentToWire(agent: AgentView): Agent {
  return create(AgentSchema, {
    id: agent.id,
    hostname: agent.hostname,
    ipAddress: agent.ipAddress,
    port: agent.port,
    ollamaVersion: agent.ollamaVersion,
    status: statusToWire(agent.status),
    lastHeartbeat: timestampFromMs(agent.lastHeartbeat),
    registeredAt: timestampFromMs(agent.registeredAt),
    labels: { ...agent.labels },
    streamConnected: agent.streamConnected,
    missedHeartbeats: agent.missedHeartbeats,
    draining: agent.draining,
    livenessHeld: agent.livenessHeld,
    gpus: agent.inventory?.gpus.map(gpuToWire) ?? [],
    models: agent.inventory?.models.map(modelToWire) ?? [],
    inventoryUpdatedAt: agent.inventoryUpdatedAt === undefined ? undefined : timestampFromMs(agent.inventoryUpdatedAt),
    reachable: agent.unreachable === undefined,
    statusMessage: agent.unreachable ?? "",
  });
}

const EVENT_TYPES = {
  added: WatchEventType.ADDED,
  updated: WatchEventType.UPDATED,
  statusChanged: WatchEventType.STATUS_CHANGED,
  removed: WatchEventType.REMOVED,
} as const;

export function watchEventToWire(event: WatchEvent): WatchAgentsResponse {
  return create(WatchAgentsResponseSchema, {
    type: EVENT_TYPES[event.type],
    agent: agentToWire(event.agent),
    revision: BigInt(event.revision),
    snapshot: event.snapshot,
  });
}

export function statusToWire(status: DomainStatus): AgentStatus {
  return status === "online" ? AgentStatus.ONLINE : AgentStatus.OFFLINE;
}

export function durationFromMs(ms: number): Duration {
  return create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });
}

export function registrationFromWire(request: RegisterRequest): Registration {
  return parseRegistration({
    agentId: request.agentId,
    hostname: request.hostname,
    ipAddress: request.ipAddress,
    port: request.port,
    ollamaVersion: request.ollamaVersion,
    labels: request.labels,
    inventory: inventoryFromWire(request.inventory),
  });
}

export function filterFromWire(
  request: Pick<ListAgentsRequest, "status" | "labelSelector" | "model" | "loadedModel" | "ready">,
): AgentFilter {
  return {
    status: statusFilterFromWire(request.status),
    labels: parseLabelSelector(request.labelSelector),
    model: modelFilter(request.model, "model"),
    loadedModel: modelFilter(request.loadedModel, "loaded_model"),
    ready: request.ready,
  };
}

function modelFilter(name: string, field: string): string | undefined {
  if (name === "") return undefined;
  if (Buffer.byteLength(name) > 256) throw invalidArgument(field, `must be a model name of at most 256 bytes, got ${Buffer.byteLength(name)}`);
  return name;
}

export function listQueryFromWire(request: ListAgentsRequest): ListQuery {
  return {
    ...filterFromWire(request),
    pageSize: parsePageSize(request.pageSize),
    after: parsePageToken(request.pageToken),
  };
}

function statusFilterFromWire(status: AgentStatus): DomainStatus | undefined {
  switch (status) {
    case AgentStatus.UNSPECIFIED:
      return undefined;
    case AgentStatus.ONLINE:
      return "online";
    case AgentStatus.OFFLINE:
      return "offline";
    default:
      throw invalidArgument(
        "status",
        `must be AGENT_STATUS_ONLINE, AGENT_STATUS_OFFLINE or unset (any status), got ${String(status)}`,
      );
  }
}

/** The host part of "host:port" or "[v6]:port" as grpc-js reports a peer; undefined if there is none. */
export function hostOfPeer(peer: string): string | undefined {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(peer);
  if (bracketed !== null) return bracketed[1];
  const colon = peer.lastIndexOf(":");
  const host = colon < 0 ? peer : peer.slice(0, colon);
  return host === "" || host === "unknown" ? undefined : host;
}
