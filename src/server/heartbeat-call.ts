// One Heartbeat stream, whatever the transport: opens the registry session on the first message, turns
// each beat into one ack echoing its seq, and ends the stream when the registry or a shutdown says so.
// The transports (grpc-server.ts, connect-routes.ts) only move messages. It holds one of the server's
// stream slots (admission.ts) while open, and ends a stream whose first message does not come in time.

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type HeartbeatRequest,
  type HeartbeatResponse,
  HeartbeatResponseSchema,
} from "../../gen/registry/v1/registry_pb.js";
import { parseAgentId } from "../registry/agent-id.js";
import { parseOllamaVersion } from "../registry/registration.js";
import { RegistryError, invalidArgument } from "../registry/registry-error.js";
import type { BeatResult, HeartbeatSession } from "../registry/heartbeat-session.js";
import type { Registry } from "../registry/registry.js";
import type { Timer } from "../common/clock.js";
import type { Admission, StreamSlot } from "./admission.js";
import type { Shutdown } from "./shutdown.js";
import { durationFromMs, statusToWire } from "./wire.js";

export class HeartbeatCall {
  private session: HeartbeatSession | undefined;
  private closed = false;
  private slot: StreamSlot | undefined;
  private firstBeatTimer: Timer | undefined;
  private readonly unsubscribe: () => void;
  /** The same every ack: built once. */
  private readonly interval: ReturnType<typeof durationFromMs>;

  /** `end` is called at most once, when the server ends the stream (superseded, deregistered, shutdown). */
  constructor(
    private readonly registry: Registry,
    shutdown: Shutdown,
    private readonly end: (reason: RegistryError) => void,
    private readonly metrics: { beat(): void },
    private readonly admission: Admission,
  ) {
    this.interval = durationFromMs(registry.heartbeatIntervalMs);
    this.unsubscribe = shutdown.onStart(() =>
      this.finish(new RegistryError("unavailable", "the registry server is shutting down; reconnect with backoff")),
    );
    try {
      this.slot = admission.openHeartbeat();
    } catch (error) {
      // Ended like a shutdown: after the transport has set the stream up, before any message is read.
      queueMicrotask(() => this.finish(error as RegistryError));
      return;
    }
    // A stream that never speaks would hold its slot and memory forever.
    this.firstBeatTimer = admission.clock.setTimer(admission.limits.firstBeatTimeoutMs, () => this.firstBeatTimedOut());
  }

  /** Applies one beat. Throws (or rejects with) a RegistryError that should end the stream. */
  handle(request: HeartbeatRequest): HeartbeatResponse | Promise<HeartbeatResponse> {
    if (this.closed) throw new RegistryError("unavailable", "this Heartbeat stream has ended; open a new one");
    this.metrics.beat();
    this.firstBeatTimer?.cancel();
    this.firstBeatTimer = undefined;
    if (this.session === undefined) {
      if (request.agentId === "") throw invalidArgument("agent_id", "is required in the first message of a Heartbeat stream");
      this.session = this.registry.openHeartbeat(
        parseAgentId(request.agentId),
        (reason) => this.finish(reason),
        request.agentSecret,
      );
    } else if (request.agentId !== "" && request.agentId.toLowerCase() !== this.session.agentId) {
      throw invalidArgument(
        "agent_id",
        `must stay ${this.session.agentId} for the whole stream, got ${request.agentId}; open one stream per agent`,
      );
    }
    const result = this.session.beat({
      ollamaVersion: request.ollamaVersion === undefined ? undefined : parseOllamaVersion(request.ollamaVersion),
      draining: request.draining,
      leaving: request.leaving,
    });
    return result instanceof Promise ? result.then((done) => this.ack(request.seq, done)) : this.ack(request.seq, result);
  }

  /** The transport is gone (client finished, cancelled, or the connection broke). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.firstBeatTimer?.cancel();
    this.slot?.release();
    this.session?.close();
  }

  private firstBeatTimedOut(): void {
    if (this.closed || this.session !== undefined) return;
    const seconds = this.admission.limits.firstBeatTimeoutMs / 1000;
    this.admission.log.refused("firstBeatTimeoutMs", { max: seconds }, "Heartbeat stream ended: no first message in time");
    this.finish(
      new RegistryError(
        "deadlineExceeded",
        `no message within ${seconds} s of opening the Heartbeat stream; send the first beat (naming agent_id) as soon as the stream opens`,
      ),
    );
  }

  private finish(reason: RegistryError): void {
    if (this.closed) return;
    this.close();
    this.end(reason);
  }

  private ack(seq: bigint, result: BeatResult): HeartbeatResponse {
    return create(HeartbeatResponseSchema, {
      seq,
      serverTime: timestampFromMs(result.serverTime),
      status: statusToWire(result.status),
      heartbeatInterval: this.interval,
    });
  }
}
