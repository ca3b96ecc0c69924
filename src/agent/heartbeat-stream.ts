// One open Heartbeat stream as the daemon holds it: the first beat names the agent and states its Ollama
// version and draining flag; then one beat per interval (the server's, refreshed from every ack: a new interval
// re-times the next beat from the last one sent), an extra beat when what the node reports changes, and a last
// `leaving` beat on shutdown. Notices a stream that stopped acknowledging. Does not reconnect: node-agent.ts
// decides that.

import * as grpc from "@grpc/grpc-js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HeartbeatRequestSchema } from "../../gen/registry/v1/registry_pb.js";
import type { Clock, Timer } from "../common/clock.js";
import type { Inventory } from "../registry/inventory.js";
import { inventoryToWire } from "../common/inventory-wire.js";
import { type HeartbeatCall, type StreamEnd, durationMs } from "./registry-connection.js";

/** What the node reports in its beats. */
export interface NodeReport {
  /** Empty while Ollama has never answered. */
  readonly ollamaVersion: string;
  /** True while Ollama does not answer, so no scheduler routes work to the node. */
  readonly draining: boolean;
  /** The inventory to report (InventoryReporter.reported): sent in a beat whenever it is a new object. */
  readonly inventory?: Inventory | undefined;
}

export interface HeartbeatStreamOptions {
  readonly agentId: string;
  /** Sent with the id in the first beat: the registry lets only the id's holder beat for it. */
  readonly agentSecret?: string | undefined;
  readonly intervalMs: number;
  readonly clock: Clock;
  /** Read at each beat. */
  readonly report: () => NodeReport;
  /** The first ack: the server has the stream. */
  readonly onConnected: () => void;
  /** HEALTHY_ACKS acks in a row: reconnect backoff may start over. */
  readonly onHealthy: () => void;
  readonly onIntervalChanged: (intervalMs: number) => void;
}

/** Three acks in a row: the stream has worked for two full intervals. */
export const HEALTHY_ACKS = 3;

/** A stream whose oldest unacknowledged beat is this many intervals old (and at least 5 s) is given up. */
const STALL_INTERVALS = 2;
const MIN_STALL_MS = 5000;

export class HeartbeatStream {
  /** Resolves once the stream is over, with its status (DEADLINE_EXCEEDED if the daemon gave up on it). */
  readonly ended: Promise<StreamEnd>;
  private intervalMs: number;
  private seq = 0n;
  private ackedSeq = 0n;
  private acks = 0;
  private lastAckAt: number;
  /** Monotonic time the last beat was sent. */
  private lastSentAt = 0;
  /** What this stream last told the server; undefined before the first beat. */
  private sent: NodeReport | undefined;
  private timer: Timer | undefined;
  private over = false;
  private stall: string | undefined;
  private leaving: { readonly seq: bigint; readonly acked: () => void } | undefined;

  constructor(
    private readonly call: HeartbeatCall,
    private readonly options: HeartbeatStreamOptions,
  ) {
    this.intervalMs = options.intervalMs;
    this.lastAckAt = options.clock.monotonic();
    this.ended = call.ended.then((end) => {
      this.over = true;
      this.timer?.cancel();
      return this.stall === undefined ? end : { code: grpc.status.DEADLINE_EXCEEDED, details: this.stall };
    });
    call.onAck((ack) => {
      this.acks++;
      this.ackedSeq = ack.seq;
      this.lastAckAt = this.options.clock.monotonic();
      if (this.acks === 1) this.options.onConnected();
      if (this.acks === HEALTHY_ACKS) this.options.onHealthy();
      const intervalMs = durationMs(ack.heartbeatInterval);
      if (intervalMs !== undefined && intervalMs !== this.intervalMs) {
        this.intervalMs = intervalMs;
        this.rearm();
        this.options.onIntervalChanged(intervalMs);
      }
      if (this.leaving !== undefined && ack.seq >= this.leaving.seq) this.leaving.acked();
    });
  }

  /** True once the server acknowledged a beat, until the stream ends. */
  get connected(): boolean {
    return this.acks > 0 && !this.over;
  }

  /** Sends the first beat; the rest follow on the interval. */
  start(): void {
    this.beat(false);
  }

  /** Beats now if what the node reports changed since the last beat (Ollama came back or went away, a new inventory). */
  reportChanged(): void {
    const report = this.options.report();
    if (this.over || this.leaving !== undefined || this.sent === undefined) return;
    if (report.ollamaVersion !== this.sent.ollamaVersion || report.draining !== this.sent.draining || report.inventory !== this.sent.inventory) {
      this.beat(false);
    }
  }

  /**
   * Sends `leaving: true` (the server marks the node OFFLINE at once) and waits for its ack, at most
   * `timeoutMs`; then closes the stream. Resolves with whether the server acknowledged.
   */
  async leave(timeoutMs: number): Promise<boolean> {
    if (this.over) return false;
    if (this.leaving !== undefined) throw new Error("leave() was already called on this stream");
    const acked = await new Promise<boolean>((resolve) => {
      const timer = this.options.clock.setTimer(timeoutMs, () => resolve(false));
      const done = (result: boolean): void => {
        timer.cancel();
        resolve(result);
      };
      this.leaving = { seq: this.seq + 1n, acked: () => done(true) };
      void this.ended.then(() => done(false));
      this.beat(true);
    });
    // Half-close after the ack so the server ends the stream cleanly (OK); without one, cut it.
    if (acked) this.call.end();
    else this.call.cancel();
    return acked;
  }

  private beat(leaving: boolean): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.over) return;
    const now = this.options.clock.monotonic();
    const stallMs = Math.max(STALL_INTERVALS * this.intervalMs, MIN_STALL_MS);
    if (!leaving && this.seq > this.ackedSeq && now - this.lastAckAt >= stallMs) {
      this.stall = `the registry acknowledged no beat for ${Math.round((now - this.lastAckAt) / 1000)} s; giving up on this stream`;
      this.call.cancel();
      return;
    }
    const report = this.options.report();
    const request: MessageInitShape<typeof HeartbeatRequestSchema> = { seq: ++this.seq };
    // The first beat of every stream states everything, so a restarted or re-registered server learns it again.
    if (this.sent === undefined) {
      request.agentId = this.options.agentId;
      if (this.options.agentSecret !== undefined) request.agentSecret = this.options.agentSecret;
    }
    if (report.ollamaVersion !== "" && report.ollamaVersion !== this.sent?.ollamaVersion) {
      request.ollamaVersion = report.ollamaVersion;
    }
    if (report.draining !== this.sent?.draining) request.draining = report.draining;
    if (report.inventory !== undefined && report.inventory !== this.sent?.inventory) request.inventory = inventoryToWire(report.inventory);
    if (leaving) request.leaving = true;
    this.sent = report;
    this.lastSentAt = now;
    this.call.send(request);
    if (!leaving) this.timer = this.options.clock.setTimer(this.intervalMs, () => this.beat(false));
  }

  /**
   * Re-times the pending beat for a new interval: one interval after the last beat sent, or at once if that
   * is past. The registry judges the node by the interval it last told (a shorter one must be obeyed now, not
   * after a beat on the old one), and a longer one spares the registry the beats it asked to be spared.
   */
  private rearm(): void {
    if (this.timer === undefined) return; // no beat pending: the stream is over or leaving
    this.timer.cancel();
    const dueInMs = Math.max(0, this.lastSentAt + this.intervalMs - this.options.clock.monotonic());
    this.timer = this.options.clock.setTimer(dueInMs, () => this.beat(false));
  }
}
