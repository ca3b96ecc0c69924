// Heartbeat-only changes (an agent's last beat time) are saved lazily: the agents that beat are noted, and
// once per flush interval their last beat times go to the store in one call, however large the fleet. A
// restart gives every agent a timeout of grace, so fresher beat times on disk would buy nothing.

import type { Clock, Timer } from "../common/clock.js";
import type { AgentId } from "./agent-id.js";

export class BeatFlusher {
  private readonly dirty = new Set<AgentId>();
  private timer: Timer | undefined;
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
    /** The agent's last beat time (wall), or undefined if it is gone. */
    private readonly lastBeat: (id: AgentId) => number | undefined,
    private readonly save: (beats: ReadonlyMap<AgentId, number>) => void,
  ) {}

  /** The agent beat: its time goes out with the next flush. */
  mark(id: AgentId): void {
    this.dirty.add(id);
    if (this.closed) return;
    this.timer ??= this.clock.setTimer(this.intervalMs, () => {
      this.timer = undefined;
      this.flush();
    });
  }

  /** The agent is gone: nothing of it to save. */
  forget(id: AgentId): void {
    this.dirty.delete(id);
  }

  /** Hands what is pending to the store now, and stops the timer. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.flush();
  }

  private flush(): void {
    if (this.dirty.size === 0) return;
    const beats = new Map<AgentId, number>();
    for (const id of this.dirty) {
      const at = this.lastBeat(id);
      if (at !== undefined) beats.set(id, at);
    }
    this.dirty.clear();
    this.save(beats);
  }
}
