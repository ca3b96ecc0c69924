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
import { type Registration, parseIpAddress } from "../registry/registration.js";
import type { Registry } from "../registry/registry.js";
import type { Caller } from "./authorizer.js";
import type { Admission, StreamSlot } from "./admission.js";
import type { Shutdown } from "./shutdown.js";
import { HeartbeatCall, type HeartbeatOutput } from "./heartbeat-call.js";
import { agentToWire, durationFromMs, filterFromWire, listQueryFromWire, registrationFromWire } from "./wire.js";
import { RegistryError } from "../registry/registry-error.js";
import { ListEncodings } from "./list-encodings.js";
import { FleetFull } from "../registry/fleet-cap.js";

export class RegistryHandlers {
  private readonly lists: ListEncodings;

  constructor(
    readonly registry: Registry,
    /** Started when the server shuts down: open streams then end with UNAVAILABLE. */
    private readonly shutdown: Shutdown,
    private readonly metrics: { beat(): void },
    /** The limits on registrations per second, streams and watchers. */
    private readonly admission: Admission,
  ) {
    this.lists = new ListEncodings(registry);
  }

  /** `peerHost` is the caller's address as the transport saw it, used when ip_address is empty. */
  async register(request: RegisterRequest, peerHost: string | undefined): Promise<RegisterResponse> {
    const registration = this.parseRegistration(request, peerHost);
    this.admission.admitRegistration(peerHost);
    const peer = peerHost === undefined ? undefined : parseIpAddress(peerHost, "peer address");
    const { agent, secret, heartbeatIntervalMs, agentTimeoutMs } = await this.registry
      .register(registration, peer, request.agentSecret)
      .catch((error: unknown) => {
        if (error instanceof FleetFull) {
          this.admission.log.refused("maxAgents", { peer: peerHost, max: error.maxAgents }, "Register refused: the registry is full");
        }
        throw error;
      });
    return create(RegisterResponseSchema, {
      agent: agentToWire(agent),
      heartbeatInterval: durationFromMs(heartbeatIntervalMs),
      agentTimeout: durationFromMs(agentTimeoutMs),
      agentSecret: secret ?? "",
    });
  }

  /**
   * A page of agents. `binary`: the answer goes out in protobuf binary, so its agents may come from the
   * cache of encoded agents (they are then not in `agents`: see list-encodings.ts); else a plain message.
   */
  listAgents(request: ListAgentsRequest, { binary }: { readonly binary: boolean }): ListAgentsResponse | Promise<ListAgentsResponse> {
    const query = listQueryFromWire(request);
    if (binary) return this.lists.binaryPage(query);
    const page = this.registry.list(query);
    return create(ListAgentsResponseSchema, { agents: page.agents.map(agentToWire), nextPageToken: page.nextPageToken });
  }

  /** A page of agents as the JSON text of a ListAgentsResponse, from the cache of encoded agents. */
  listAgentsJson(request: ListAgentsRequest): Promise<Buffer> {
    return this.lists.jsonPage(listQueryFromWire(request));
  }

  getAgent(request: GetAgentRequest): GetAgentResponse {
    return create(GetAgentResponseSchema, { agent: agentToWire(this.registry.get(parseAgentId(request.agentId))) });
  }

  /** `caller` as the Authorizer admitted it: an admin needs no agent secret. */
  async deregister(request: DeregisterRequest, caller: Caller): Promise<DeregisterResponse> {
    await this.registry.deregister(parseAgentId(request.agentId), {
      secret: request.agentSecret,
      admin: caller.role === "admin",
    });
    return create(DeregisterResponseSchema);
  }

  /**
   * Starts a watch; it ends with UNAVAILABLE when the server shuts down. The transport closes the watcher
   * when the caller leaves and releases `slot` once its stream has ended.
   */
  watchAgents(request: WatchAgentsRequest): { watcher: Watcher; slot: StreamSlot } {
    const filter = filterFromWire(request);
    const slot = this.admission.openWatch();
    // Unsubscribed once the watch ends, so watches that come and go leave nothing behind.
    let unsubscribe = (): void => undefined;
    const watcher = this.registry.watch(filter, (reason) => {
      unsubscribe();
      if (reason?.kind === "resourceExhausted") {
        const limit = this.admission.limits.watchQueueLimit;
        this.admission.log.refused("watchQueueLimit", { max: limit }, "watcher cut off: it fell too many events behind");
      }
    });
    unsubscribe = this.shutdown.onStart(() =>
      watcher.fail(new RegistryError("unavailable", "the registry server is shutting down; watch again with backoff")),
    );
    return { watcher, slot };
  }

  heartbeat(out: HeartbeatOutput): HeartbeatCall {
    return new HeartbeatCall(this.registry, this.shutdown, out, this.metrics, this.admission);
  }

  /** A refused registration (too many labels, too long a hostname, ...) is worth a (rate-limited) line. */
  private parseRegistration(request: RegisterRequest, peerHost: string | undefined): Registration {
    try {
      return registrationFromWire(request);
    } catch (error) {
      if (error instanceof RegistryError) {
        this.admission.log.refused("registrationRules", { peer: peerHost, reason: error.message }, "Register refused: invalid registration");
      }
      throw error;
    }
  }
}
