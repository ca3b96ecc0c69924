// The WatchAgents fan-out: each subscriber gets the snapshot it subscribed at, then one event per visible
// change the agent table applies, carrying that commit's revision. Fed by the table's apply step only, so
// an event is never published before its change is durable.

import type { AgentRecord, AgentView } from "./agent.js";
import type { AgentFilter } from "./agent-query.js";
import type { AppliedChange } from "./agent-table.js";
import { RegistryError } from "./registry-error.js";
import { Watcher, changeType } from "./watcher.js";

export class ChangeFeed {
  private readonly watchers = new Set<Watcher>();
  private closedWith: RegistryError | undefined;

  constructor(
    /** The view callers see of a record (with its liveness facts). */
    private readonly view: (record: AgentRecord) => AgentView,
    /** Events a watcher may fall behind before it is cut off, now (it follows the fleet's size). */
    private readonly queueLimit: () => number,
  ) {}

  get size(): number {
    return this.watchers.size;
  }

  /**
   * A new subscriber: `snapshot` (the matching agents, sorted) first, as events at `revision`, then the
   * changes. `onEnd` is called once when the watch ends (null for a clean close).
   */
  subscribe(
    filter: AgentFilter,
    snapshot: readonly AgentRecord[],
    revision: number,
    onEnd?: (reason: RegistryError | null) => void,
  ): Watcher {
    const watcher = new Watcher(filter, this.queueLimit, (ended, reason) => {
      this.watchers.delete(ended);
      onEnd?.(reason);
    });
    watcher.begin(
      snapshot.map((record) => this.view(record)),
      revision,
    );
    if (this.closedWith !== undefined) watcher.fail(this.closedWith);
    else this.watchers.add(watcher);
    return watcher;
  }

  /** Tells every watcher about an applied change, if it is a visible one. */
  publish(change: AppliedChange): void {
    if (this.watchers.size === 0) return;
    const before = change.before === undefined ? undefined : this.view(change.before);
    const after = change.after === undefined ? undefined : this.view(change.after);
    const type = changeType(before, after);
    if (type === undefined) return;
    for (const watcher of this.watchers) watcher.offer(before, after, type, change.revision);
  }

  /** Ends every watch with `reason`, and every later one at once. */
  close(reason: RegistryError): void {
    this.closedWith = reason;
    for (const watcher of [...this.watchers]) watcher.fail(reason);
  }
}
