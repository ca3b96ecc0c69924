// The AgentRegistry RPCs as plain functions over the Registry, shared by both transports: parse the
// request (wire.ts), call the domain, build the response. Errors are thrown as they are; the transports
// map them (errors.ts).

import { create } from "@bufbuild/protobuf";
import {
  type DeregisterRequest,
  type DeregisterResponse,
  DeregisterResponseSchema,
  type GetAgentRequest,
  type GetAgentResponse,
  GetAgentResponseSchema,
  type ListAgentsRequest,
  type ListAgentsResponse,
  ListAgentsResponseSchema,
  type RegisterRequest,
  type RegisterResponse,
  RegisterResponseSchema,
  type WatchAgentsRequest,
} from "../../gen/registry/v1/registry_pb.js";
import type { Watcher } from "../registry/watcher.js";
import { parseAgentId } from "../registry/agent-id.js";
import { parseIpAddress } from "../registry/registration.js";
import type { Registry } from "../registry/registry.js";
import { HeartbeatCall } from "./heartbeat-call.js";
import { agentToWire, durationFromMs, filterFromWire, listQueryFromWire, registrationFromWire } from "./wire.js";
import { RegistryError } from "../registry/registry-error.js";

export class RegistryHandlers {
  constructor(
    readonly registry: Registry,
    /** Aborted when the server shuts down: open streams then end with UNAVAILABLE. */
    private readonly shutdown: AbortSignal,
    private readonly metrics: { beat(): void },
  ) {}

  /** `peerHost` is the caller's address as the transport saw it, used when ip_address is empty. */
  async register(request: RegisterRequest, peerHost: string | undefined): Promise<RegisterResponse> {
    const registration = registrationFromWire(request);
    const peer = peerHost === undefined ? undefined : parseIpAddress(peerHost, "peer address");
    const agent = await this.registry.register(registration, peer);
    return create(RegisterResponseSchema, {
      agent: agentToWire(agent),
      heartbeatInterval: durationFromMs(this.registry.heartbeatIntervalMs),
      agentTimeout: durationFromMs(this.registry.agentTimeoutMs),
    });
  }

  listAgents(request: ListAgentsRequest): ListAgentsResponse {
    const page = this.registry.list(listQueryFromWire(request));
    return create(ListAgentsResponseSchema, {
      agents: page.agents.map(agentToWire),
      nextPageToken: page.nextPageToken,
    });
  }

  getAgent(request: GetAgentRequest): GetAgentResponse {
    return create(GetAgentResponseSchema, { agent: agentToWire(this.registry.get(parseAgentId(request.agentId))) });
  }

  async deregister(request: DeregisterRequest): Promise<DeregisterResponse> {
    await this.registry.deregister(parseAgentId(request.agentId));
    return create(DeregisterResponseSchema);
  }

  /** Starts a watch; it ends with UNAVAILABLE when the server shuts down. Close it when the caller leaves. */
  watchAgents(request: WatchAgentsRequest): Watcher {
    const watcher = this.registry.watch(filterFromWire(request));
    const onShutdown = () =>
      watcher.fail(new RegistryError("unavailable", "the registry server is shutting down; watch again with backoff"));
    if (this.shutdown.aborted) onShutdown();
    else this.shutdown.addEventListener("abort", onShutdown, { once: true });
    return watcher;
  }

  heartbeat(end: (reason: RegistryError) => void): HeartbeatCall {
    return new HeartbeatCall(this.registry, this.shutdown, end, this.metrics);
  }
}
