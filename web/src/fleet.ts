// The fleet as the page knows it: the agents of the watch, by id, in ListAgents' order (hostname, then id).
// Changed only by watch events; a new snapshot (after a reconnect) replaces what was known, dropping the
// agents it no longer holds. Says which agents changed, so the table redraws only those rows.

import { type Agent, type WatchAgentsResponse, WatchEventType } from "../../gen/registry/v1/registry_pb.js";

export interface FleetChanges {
  /** Agents added or changed since the last take. */
  readonly changed: ReadonlySet<string>;
  /** Agents gone since the last take. */
  readonly removed: ReadonlySet<string>;
  /** The order changed (an agent came or went, or a hostname changed). */
  readonly reordered: boolean;
}

export function compareAgents(a: Agent, b: Agent): number {
  if (a.hostname !== b.hostname) return a.hostname < b.hostname ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

export class Fleet {
  private readonly agents = new Map<string, Agent>();
  /** Ids in order; kept until the order changes (an agent's other fields change without moving it). */
  private sorted: string[] | undefined = [];
  private changed = new Set<string>();
  private removed = new Set<string>();
  private reordered = false;
  /** Ids seen in the snapshot under way, when one is. */
  private snapshot: Set<string> | undefined;

  get size(): number {
    return this.agents.size;
  }

  get(id: string): Agent | undefined {
    return this.agents.get(id);
  }

  /** The agents as they are now, sorted by hostname, then id. */
  inOrder(): Agent[] {
    this.sorted ??= [...this.agents.values()].sort(compareAgents).map((agent) => agent.id);
    return this.sorted.map((id) => this.agents.get(id) as Agent);
  }

  /** A new watch began: its snapshot replaces what is known once it ends. */
  beginSnapshot(): void {
    this.snapshot = new Set();
  }

  /** The new watch's snapshot is complete: agents it did not mention are gone. */
  endSnapshot(): void {
    const seen = this.snapshot;
    if (seen === undefined) return;
    this.snapshot = undefined;
    for (const id of [...this.agents.keys()]) if (!seen.has(id)) this.delete(id);
  }

  get inSnapshot(): boolean {
    return this.snapshot !== undefined;
  }

  apply(event: WatchAgentsResponse): void {
    const agent = event.agent;
    if (agent === undefined) return;
    if (event.snapshot) this.snapshot?.add(agent.id);
    if (event.type === WatchEventType.REMOVED) {
      this.delete(agent.id);
      return;
    }
    const before = this.agents.get(agent.id);
    this.agents.set(agent.id, agent);
    this.changed.add(agent.id);
    this.removed.delete(agent.id);
    if (before === undefined || before.hostname !== agent.hostname) this.reorder();
  }

  /** What changed since the last call. */
  take(): FleetChanges {
    const changes = { changed: this.changed, removed: this.removed, reordered: this.reordered };
    this.changed = new Set();
    this.removed = new Set();
    this.reordered = false;
    return changes;
  }

  private delete(id: string): void {
    if (!this.agents.delete(id)) return;
    this.changed.delete(id);
    this.removed.add(id);
    this.reorder();
  }

  private reorder(): void {
    this.sorted = undefined;
    this.reordered = true;
  }
}
