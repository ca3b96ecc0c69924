// One Heartbeat stream, whatever the transport: opens the registry session on the first message, turns
// each beat into one ack echoing its seq, sends the acks in the order the beats came (a beat that waits
// for a durable change holds back the acks after it), and ends the stream when the registry, a shutdown
// or a bad message says so. The transports (grpc-server.ts, connect-routes.ts) only move messages. It
// holds one of the server's stream slots (admission.ts) while open, and ends a stream whose first message
// does not come in time.

import { inventoryFromWire } from "../common/inventory-wire.js";
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

/** Where a HeartbeatCall's output goes: each ack in order, then at most one end. */
export interface HeartbeatOutput {
  ack(response: HeartbeatResponse): void;
  /** The server ends the stream with `reason` (a RegistryError, or an unexpected error). */
  end(reason: unknown): void;
}

export class HeartbeatCall {
  private session: HeartbeatSession | undefined;
  private closed = false;
  /** The last ack still to be sent, once it and every ack before it has been; undefined when none waits. */
  private tail: Promise<void> | undefined;
  private slot: StreamSlot | undefined;
  private firstBeatTimer: Timer | undefined;
  private readonly unsubscribe: () => void;
  /** The interval of the last ack, built once for as long as it stays the same. */
  private interval: { readonly ms: number; readonly duration: ReturnType<typeof durationFromMs> } | undefined;

  /** `out.end` is called at most once: the stream is superseded, deregistered, shut down, or sent a bad beat. */
  constructor(
    private readonly registry: Registry,
    shutdown: Shutdown,
    private readonly out: HeartbeatOutput,
    private readonly metrics: { beat(): void },
    private readonly admission: Admission,
  ) {
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

  /**
   * Takes one message: it counts for liveness now, and its ack goes out after every earlier one. A message
   * that breaks the rules (or a change that cannot be written) ends the stream instead.
   */
  receive(request: HeartbeatRequest): void {
    if (this.closed) return;
    let result: HeartbeatResponse | Promise<HeartbeatResponse>;
    try {
      result = this.apply(request);
    } catch (error) {
      this.finish(error);
      return;
    }
    if (this.tail === undefined && !(result instanceof Promise)) {
      this.out.ack(result);
      return;
    }
    const tail: Promise<void> = (this.tail ?? Promise.resolve())
      .then(() => result)
      .then(
        (ack) => {
          if (!this.closed) this.out.ack(ack);
        },
        (error: unknown) => this.finish(error),
      )
      .then(() => {
        if (this.tail === tail) this.tail = undefined;
      });
    this.tail = tail;
  }

  /** A message the transport could not decode: the stream ends with `reason`, after the acks before it. */
  refuse(reason: RegistryError): void {
    if (this.tail === undefined) this.finish(reason);
    else void this.tail.then(() => this.finish(reason));
  }

  /** Resolves once the ack of every message received so far has been sent (or the stream has ended). */
  drained(): Promise<void> {
    return this.tail ?? Promise.resolve();
  }

  private apply(request: HeartbeatRequest): HeartbeatResponse | Promise<HeartbeatResponse> {
    this.metrics.beat();
    this.firstBeatTimer?.cancel();
    this.firstBeatTimer = undefined;
    if (this.session === undefined) {
      this.session = this.open(request);
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
      inventory: inventoryFromWire(request.inventory),
    });
    const seq = request.seq;
    return result instanceof Promise ? result.then((done) => this.ack(seq, done)) : this.ack(seq, result);
  }

  /**
   * The registry session the stream's first message names. A method of its own, so that the end callback,
   * which lives as long as the stream, keeps nothing of the message alive (in `apply` it would share a
   * closure context with `request`: the first beat, a whole inventory with it, held for the stream's life).
   */
  private open(request: HeartbeatRequest): HeartbeatSession {
    if (request.agentId === "") throw invalidArgument("agent_id", "is required in the first message of a Heartbeat stream");
    return this.registry.openHeartbeat(parseAgentId(request.agentId), (reason) => this.finish(reason), request.agentSecret);
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

  private finish(reason: unknown): void {
    if (this.closed) return;
    this.close();
    this.out.end(reason);
  }

  private ack(seq: bigint, result: BeatResult): HeartbeatResponse {
    if (this.interval?.ms !== result.intervalMs) this.interval = { ms: result.intervalMs, duration: durationFromMs(result.intervalMs) };
    return create(HeartbeatResponseSchema, {
      seq,
      serverTime: timestampFromMs(result.serverTime),
      status: statusToWire(result.status),
      heartbeatInterval: this.interval.duration,
    });
  }
}
