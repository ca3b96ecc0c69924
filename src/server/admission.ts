// Admission control for the limits the handlers enforce themselves (the listeners enforce message size and
// streams per connection): Register calls per second, streams open in total (Heartbeat and WatchAgents,
// both listeners together) and watchers. A refusal is a RESOURCE_EXHAUSTED RegistryError plus a
// rate-limited warn line (limit-log.ts).

import type { LimitsConfig } from "../config/index.js";
import type { Clock } from "../common/clock.js";
import { RegistryError } from "../registry/registry-error.js";
import type { LimitLog } from "./limit-log.js";
import { TokenBucket } from "./token-bucket.js";

/** One admitted stream; release it once when the transport's stream ends. */
export interface StreamSlot {
  release(): void;
}

export class Admission {
  private readonly registrations: TokenBucket;
  private heartbeats = 0;
  /**
   * WatchAgents calls open on the transports. Counted per call, not per registry watcher: a watcher cut
   * off for falling behind may leave a stuck stream open (a client that never reads), and that stream
   * still holds its slot until it closes.
   */
  private watchers = 0;

  constructor(
    readonly limits: LimitsConfig,
    readonly clock: Clock,
    readonly log: LimitLog,
  ) {
    this.registrations = new TokenBucket(clock, limits.maxRegistrationsPerSecond);
  }

  /** Streams counted against maxStreams: open Heartbeat calls and watchers. */
  get openStreams(): number {
    return this.heartbeats + this.watchers;
  }

  /** Throws RESOURCE_EXHAUSTED, with a retry hint, when Register calls come faster than the limit. */
  admitRegistration(peer: string | undefined): void {
    const waitMs = this.registrations.take();
    if (waitMs === 0) return;
    const limit = this.limits.maxRegistrationsPerSecond;
    this.log.refused("maxRegistrationsPerSecond", { peer, max: limit }, "Register refused: too many registrations per second");
    throw new RegistryError(
      "resourceExhausted",
      `too many registrations: this server takes at most ${limit} a second; retry in ${waitMs} ms, with backoff`,
      { retryAfterMs: waitMs },
    );
  }

  /** Admits a new Heartbeat stream, or throws RESOURCE_EXHAUSTED when maxStreams are open. */
  openHeartbeat(): StreamSlot {
    this.checkStreams("Heartbeat");
    this.heartbeats++;
    return once(() => this.heartbeats--);
  }

  /** Admits a new WatchAgents call, or throws RESOURCE_EXHAUSTED when maxWatchers or maxStreams are open. */
  openWatch(): StreamSlot {
    const { maxWatchers } = this.limits;
    if (this.watchers >= maxWatchers) {
      this.log.refused("maxWatchers", { max: maxWatchers }, "WatchAgents refused: too many watchers");
      throw new RegistryError(
        "resourceExhausted",
        `too many watchers: this server allows ${maxWatchers} WatchAgents streams at once; retry later, with backoff`,
      );
    }
    this.checkStreams("WatchAgents");
    this.watchers++;
    return once(() => this.watchers--);
  }

  private checkStreams(method: "Heartbeat" | "WatchAgents"): void {
    const { maxStreams } = this.limits;
    if (this.openStreams < maxStreams) return;
    this.log.refused("maxStreams", { method, max: maxStreams }, `${method} refused: too many open streams`);
    throw new RegistryError(
      "resourceExhausted",
      `too many open streams: this server allows ${maxStreams} Heartbeat and WatchAgents streams at once; retry later, with backoff`,
    );
  }
}

function once(release: () => void): StreamSlot {
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}
