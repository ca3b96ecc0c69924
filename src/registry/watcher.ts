// One WatchAgents subscriber: its filter, its bounded queue of events, and how a change to an agent reads
// through that filter (an agent entering the filter is ADDED for this watcher, one leaving it REMOVED).
// A watcher that falls more than `limit` events behind is ended: a slow reader never slows the registry.
// The registry never sets that limit below its fleet's size: one change to every node at once (a hold of
// the offline guard, a mass expiry) is a backlog no larger than a snapshot, and cuts off no reader that
// keeps up.

import { type AgentView, sameLabels } from "./agent.js";
import { type AgentFilter, matches } from "./agent-query.js";
import { sameRouting } from "./inventory.js";
import { RegistryError } from "./registry-error.js";

export type WatchEventType = "added" | "updated" | "statusChanged" | "removed";

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly agent: AgentView;
  readonly revision: number;
  /** Part of the initial snapshot. */
  readonly snapshot: boolean;
}

/** What kind of visible change turns `before` into `after`; undefined when nothing visible changed. */
export function changeType(before: AgentView | undefined, after: AgentView | undefined): WatchEventType | undefined {
  if (before === undefined) return after === undefined ? undefined : "added";
  if (after === undefined) return "removed";
  if (before.status !== after.status) return "statusChanged";
  const same =
    before.hostname === after.hostname &&
    before.ipAddress === after.ipAddress &&
    before.port === after.port &&
    before.ollamaVersion === after.ollamaVersion &&
    before.draining === after.draining &&
    before.streamConnected === after.streamConnected &&
    before.livenessHeld === after.livenessHeld &&
    before.unreachable === after.unreachable &&
    sameLabels(before.labels, after.labels) &&
    sameRouting(before.inventory, after.inventory);
  return same ? undefined : "updated";
}

export class Watcher implements AsyncIterable<WatchEvent> {
  private queue: WatchEvent[] = [];
  private head = 0;
  /** Snapshot events not yet read: they do not count against the limit. */
  private snapshotLeft = 0;
  private reader: { resolve(result: IteratorResult<WatchEvent>): void; reject(error: unknown): void } | undefined;
  /** Set once the watch has ended: null for a clean close, else the reason. */
  private ended: RegistryError | null | undefined;

  constructor(
    readonly filter: AgentFilter,
    /** Read at every event: the registry's limit follows the fleet's size. */
    private readonly limit: () => number,
    /** Called once when the watch ends: `reason` null for a clean close. */
    private readonly onEnd: (watcher: Watcher, reason: RegistryError | null) => void,
  ) {}

  /** @internal The registry queues the snapshot first. */
  begin(snapshot: readonly AgentView[], revision: number): void {
    for (const agent of snapshot) this.queue.push({ type: "added", agent, revision, snapshot: true });
    this.snapshotLeft = snapshot.length;
  }

  /** @internal The registry reports every visible change. */
  offer(before: AgentView | undefined, after: AgentView | undefined, type: WatchEventType, revision: number): void {
    if (this.ended !== undefined) return;
    const was = before !== undefined && matches(before, this.filter);
    const is = after !== undefined && matches(after, this.filter);
    if (!was && !is) return;
    const seen: WatchEventType = !was ? "added" : !is ? "removed" : type;
    this.push({ type: seen, agent: (after ?? before) as AgentView, revision, snapshot: false });
  }

  /** Ends the watch with `reason` once the reader has taken what is queued before it. */
  fail(reason: RegistryError): void {
    this.end(reason);
  }

  close(): void {
    this.end(null);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  private push(event: WatchEvent): void {
    const limit = this.limit();
    if (this.queue.length - this.head - this.snapshotLeft >= limit) {
      // Dropping events would leave the reader with a wrong picture; cut it off instead, and say so.
      this.queue = [];
      this.head = 0;
      this.end(
        new RegistryError(
          "resourceExhausted",
          `this watcher fell more than ${limit} events behind and was cut off; watch again to get a fresh snapshot`,
        ),
      );
      return;
    }
    const reader = this.reader;
    if (reader !== undefined) {
      this.reader = undefined;
      reader.resolve({ done: false, value: event });
    } else {
      this.queue.push(event);
    }
  }

  private next(): Promise<IteratorResult<WatchEvent>> {
    if (this.head < this.queue.length) {
      const event = this.queue[this.head++] as WatchEvent;
      if (event.snapshot) this.snapshotLeft--;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ done: false, value: event });
    }
    if (this.ended === null) return Promise.resolve({ done: true, value: undefined });
    if (this.ended !== undefined) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => (this.reader = { resolve, reject }));
  }

  private end(reason: RegistryError | null): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.onEnd(this, reason);
    const reader = this.reader;
    this.reader = undefined;
    if (reader === undefined) return;
    if (reason === null) reader.resolve({ done: true, value: undefined });
    else reader.reject(reason);
  }
}
