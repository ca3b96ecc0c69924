// The heartbeat interval told to agents, and the timeout that goes with it (Nomad's rule): with a cap on
// fleet-wide beats per second, a fleet too big for the configured interval is told a longer one, fleet / cap,
// and each agent's timeout grows in the same ratio. Only computes; who was told what is the liveness
// authority's record.

export interface HeartbeatPaceOptions {
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  /** Fleet-wide beats per second at most; 0 is no cap. */
  readonly maxBeatsPerSecond: number;
}

export class HeartbeatPace {
  private readonly baseIntervalMs: number;
  private readonly baseTimeoutMs: number;
  private readonly maxBeatsPerSecond: number;

  constructor(options: HeartbeatPaceOptions) {
    this.baseIntervalMs = options.heartbeatIntervalMs;
    this.baseTimeoutMs = options.agentTimeoutMs;
    this.maxBeatsPerSecond = options.maxBeatsPerSecond;
  }

  /** The interval to tell agents of a fleet of `fleet` beating nodes, in whole ms. */
  intervalFor(fleet: number): number {
    if (this.maxBeatsPerSecond <= 0) return this.baseIntervalMs;
    return Math.max(this.baseIntervalMs, Math.ceil((fleet * 1000) / this.maxBeatsPerSecond));
  }

  /** The timeout of an agent told `intervalMs`: the configured one, stretched as the interval was. */
  timeoutFor(intervalMs: number): number {
    if (intervalMs === this.baseIntervalMs) return this.baseTimeoutMs;
    return Math.round((this.baseTimeoutMs * intervalMs) / this.baseIntervalMs);
  }
}
