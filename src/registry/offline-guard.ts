// The offline guard (Kubernetes' unhealthy-zone rule, adapted): when more than a share of the fleet would
// time out within one timeout, it is likelier that the registry lost its own network than that those nodes
// died together, so timeouts are held instead of turning the fleet OFFLINE. Decides when a hold begins and
// ends and says so in the log; which agents are held, and what a release does to them, is the liveness
// authority's business.
//
// "Would time out": an ONLINE agent silent for its interval and a quarter of the slack between interval and
// timeout (a healthy agent a little late is not counted; when a whole fleet stops at once, the count has
// passed the threshold before the first deadline), plus the agents already turned OFFLINE by timeout within the
// last timeout, so a fleet that goes silent in two waves is seen as one. Counting is a scan of the fleet,
// done only when a deadline passes or a hold is under way, and at most once per CENSUS_TTL_MS.

import type { Clock, Timer } from "../common/clock.js";
import type { Log } from "../common/log.js";

export interface OfflineGuardSettings {
  /** Share of the fleet (0-1) timing out within one timeout that starts a hold; 0 turns the guard off. */
  readonly share: number;
  /** Fleets smaller than this are never held. */
  readonly minFleet: number;
  /** A hold ends after this long however many are still silent (they then turn OFFLINE). */
  readonly maxHoldMs: number;
}

export const DEFAULT_OFFLINE_GUARD: OfflineGuardSettings = { share: 0.5, minFleet: 10, maxHoldMs: 300_000 };

/** ONLINE agents now, and how many of them are silent (would time out). */
export interface Census {
  readonly online: number;
  readonly silent: number;
}

/** What the guard reports while a hold is under way. */
export interface HoldState {
  /** Monotonic time the hold began. */
  readonly sinceMonotonic: number;
  /** Wall time the hold began, for people. */
  readonly since: number;
  /** Agents timing out within one timeout, and the fleet they are a share of, at the last count. */
  readonly silent: number;
  readonly fleet: number;
}

export interface OfflineGuardOptions {
  readonly settings: OfflineGuardSettings;
  readonly clock: Clock;
  readonly log: Log;
  /** The window of "within one timeout", in ms. */
  readonly windowMs: () => number;
  /** How often a hold is counted again (it may end): at most the heartbeat interval, at most 1 s. */
  readonly recheckMs: number;
  readonly census: () => Census;
  /** The hold ended: `maxHold` says it outlasted the limit rather than the silence ending. */
  readonly released: (reason: "recovered" | "maxHold") => void;
}

/** A census this young is used again rather than made again (a scan of the fleet). */
const CENSUS_TTL_MS = 20;

export class OfflineGuard {
  private hold: HoldState | undefined;
  /** After a hold outlasted its limit, no new one starts until the silent share falls under the threshold. */
  private exhausted = false;
  /** Monotonic times of timeouts within the window, oldest first. */
  private readonly timeouts: number[] = [];
  private timeoutsHead = 0;
  private cached: { at: number; silent: number; fleet: number } | undefined;
  private recheckTimer: Timer | undefined;
  private maxHoldTimer: Timer | undefined;
  private soonTimer: Timer | undefined;

  constructor(private readonly options: OfflineGuardOptions) {}

  get enabled(): boolean {
    return this.options.settings.share > 0;
  }

  /** The hold under way, or undefined. */
  get state(): HoldState | undefined {
    return this.hold;
  }

  /** An ONLINE agent's deadline passed: whether its timeout is to be held rather than committed. */
  admit(): boolean {
    if (!this.enabled) return false;
    if (this.hold !== undefined) return true;
    const count = this.count();
    const over = this.over(count);
    if (this.exhausted) {
      if (over) return false;
      this.exhausted = false;
    }
    if (!over) return false;
    this.begin(count);
    return true;
  }

  /**
   * An agent turned OFFLINE by timeout: it counts as timing out for one window. A count made before still
   * holds (the agent was silent then, it is a recent timeout now), so a wave of timeouts costs one scan of
   * the fleet per CENSUS_TTL_MS, not one per timeout.
   */
  timedOut(): void {
    if (!this.enabled) return;
    this.timeouts.push(this.options.clock.monotonic());
  }

  /** Something that changes the count happened (a held agent beat again): the hold may end now. */
  changed(): void {
    if (this.hold === undefined) {
      this.cached = undefined;
      return;
    }
    // Many held agents beat again within moments: count once for them all, a few ms later.
    const age = this.cached === undefined ? Infinity : this.options.clock.monotonic() - this.cached.at;
    if (age >= CENSUS_TTL_MS) {
      this.cached = undefined;
      this.recheck();
    } else {
      this.soonTimer ??= this.options.clock.setTimer(CENSUS_TTL_MS - age, () => {
        this.soonTimer = undefined;
        this.cached = undefined;
        this.recheck();
      });
    }
  }

  /** Ends any hold without releasing anything (the authority stops judging: shutdown, demotion). */
  close(): void {
    this.stopTimers();
    this.hold = undefined;
    this.exhausted = false;
  }

  private begin(count: { silent: number; fleet: number }): void {
    const { clock, settings } = this.options;
    this.hold = { sinceMonotonic: clock.monotonic(), since: clock.now(), ...count };
    this.options.log.error(
      { silent: count.silent, fleet: count.fleet, thresholdShare: settings.share, maxHoldSeconds: settings.maxHoldMs / 1000 },
      `offline guard engaged: ${count.silent} of ${count.fleet} nodes stopped beating within one timeout ` +
        `(over ${Math.round(settings.share * 100)}%), likelier a network problem of this registry than dead nodes; ` +
        `holding them ONLINE (liveness_held) for up to ${settings.maxHoldMs / 1000} s`,
    );
    this.maxHoldTimer = clock.setTimer(settings.maxHoldMs, () => this.end("maxHold"));
    this.scheduleRecheck();
  }

  private recheck(): void {
    if (this.hold === undefined) return;
    const count = this.count();
    this.hold = { ...this.hold, ...count };
    if (!this.over(count)) this.end("recovered");
  }

  private scheduleRecheck(): void {
    this.recheckTimer = this.options.clock.setTimer(this.options.recheckMs, () => {
      this.recheckTimer = undefined;
      this.recheck();
      if (this.hold !== undefined) this.scheduleRecheck();
    });
  }

  private end(reason: "recovered" | "maxHold"): void {
    const hold = this.hold;
    if (hold === undefined) return;
    this.stopTimers();
    this.hold = undefined;
    this.exhausted = reason === "maxHold";
    const heldSeconds = Math.round((this.options.clock.monotonic() - hold.sinceMonotonic) / 100) / 10;
    if (reason === "maxHold") {
      this.options.log.error(
        { silent: hold.silent, fleet: hold.fleet, heldSeconds },
        `offline guard released after its maximum hold of ${this.options.settings.maxHoldMs / 1000} s; nodes still silent turn OFFLINE now`,
      );
    } else {
      this.options.log.warn(
        { silent: hold.silent, fleet: hold.fleet, heldSeconds },
        "offline guard released: most nodes beat again; nodes still silent turn OFFLINE unless they beat within one interval",
      );
    }
    this.options.released(reason);
  }

  private stopTimers(): void {
    this.recheckTimer?.cancel();
    this.recheckTimer = undefined;
    this.maxHoldTimer?.cancel();
    this.maxHoldTimer = undefined;
    this.soonTimer?.cancel();
    this.soonTimer = undefined;
  }

  private over(count: { silent: number; fleet: number }): boolean {
    const { share, minFleet } = this.options.settings;
    return count.fleet >= minFleet && count.silent > share * count.fleet;
  }

  private count(): { silent: number; fleet: number } {
    const now = this.options.clock.monotonic();
    if (this.cached !== undefined && now - this.cached.at < CENSUS_TTL_MS) return this.cached;
    const recent = this.recentTimeouts(now);
    const { online, silent } = this.options.census();
    this.cached = { at: now, silent: silent + recent, fleet: online + recent };
    return this.cached;
  }

  private recentTimeouts(now: number): number {
    const from = now - this.options.windowMs();
    while (this.timeoutsHead < this.timeouts.length && (this.timeouts[this.timeoutsHead] as number) <= from) this.timeoutsHead++;
    // Compact now and then, so the array does not grow with every timeout ever.
    if (this.timeoutsHead > 1024 && this.timeoutsHead * 2 > this.timeouts.length) {
      this.timeouts.splice(0, this.timeoutsHead);
      this.timeoutsHead = 0;
    }
    return this.timeouts.length - this.timeoutsHead;
  }
}
