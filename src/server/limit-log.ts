// Refusals by a resource limit, for the operator: one warn line per limit at most every 10 s (a flood of
// refused requests must not flood the log), each saying how many refusals it stands for, and a counter
// per limit for every single one (agent_registry_limit_refusals_total).

import type { Clock } from "../common/clock.js";
import type { Log } from "../common/log.js";

/** Which limit refused: a LimitsConfig key, or "registrationRules" for labels, hostname and the like. */
export type LimitName =
  | "maxAgents"
  | "maxMessageBytes"
  | "maxStreamsPerConnection"
  | "maxStreams"
  | "maxWatchers"
  | "maxRegistrationsPerSecond"
  | "firstBeatTimeoutMs"
  | "watchQueueLimit"
  | "registrationRules";

export interface RefusalCounter {
  refused(limit: LimitName): void;
}

const DEFAULT_INTERVAL_MS = 10_000;

export class LimitLog {
  private readonly last = new Map<LimitName, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Log,
    private readonly clock: Clock,
    private readonly counter: RefusalCounter = { refused() {} },
    private readonly intervalMs = DEFAULT_INTERVAL_MS,
  ) {}

  /**
   * Records one refusal by `limit`; logs it unless a line for the same limit went out recently. `fields`
   * add context (peer, method, `max`: the configured value); `limit` and `suppressed` are set here.
   */
  refused(limit: LimitName, fields: object, message: string): void {
    this.counter.refused(limit);
    const now = this.clock.monotonic();
    const last = this.last.get(limit);
    if (last !== undefined && now - last.at < this.intervalMs) {
      last.suppressed++;
      return;
    }
    // `suppressed`: refusals by this limit since the previous line that got no line of their own.
    this.log.warn({ ...fields, limit, suppressed: last?.suppressed ?? 0 }, message);
    this.last.set(limit, { at: now, suppressed: 0 });
  }
}
