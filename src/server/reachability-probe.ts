// The opt-in reachability probe (REGISTRY_PROBE_INTERVAL, off by default): every interval, GET
// http://<ip_address>:<port>/api/version of each ONLINE node, at most 32 at a time, 2 s each. Three failures
// in a row mark the node unreachable (the address and the error in status_message); one success marks it
// reachable again. Off by default because it sends traffic to whatever address a node claims: an operator
// must ask for that.

import { isIP } from "node:net";
import { type Clock, type Timer, serverClock } from "../common/clock.js";
import type { Log } from "../common/log.js";
import type { AgentId } from "../registry/agent-id.js";
import type { Registry } from "../registry/registry.js";

export const PROBE_CONCURRENCY = 32;
export const PROBE_TIMEOUT_MS = 2000;
/** Failures in a row before a node is marked unreachable. */
export const PROBE_FAILURES = 3;

export interface ReachabilityProbeOptions {
  readonly registry: Registry;
  readonly intervalMs: number;
  readonly log: Log;
  readonly clock?: Clock;
  readonly fetch?: typeof fetch;
}

export class ReachabilityProbe {
  private readonly failures = new Map<AgentId, number>();
  private readonly clock: Clock;
  private readonly stopping = new AbortController();
  private timer: Timer | undefined;
  private round: Promise<void> | undefined;

  constructor(private readonly options: ReachabilityProbeOptions) {
    this.clock = options.clock ?? serverClock;
  }

  start(): void {
    this.schedule();
  }

  /** Stops probing and waits for a round under way (its requests are aborted). */
  async close(): Promise<void> {
    this.stopping.abort();
    this.timer?.cancel();
    await this.round;
  }

  /** One round over every ONLINE node; resolves once each has been probed and its verdict recorded. */
  async probeAll(): Promise<void> {
    const targets = this.options.registry.probeTargets();
    const known = new Set(targets.map((target) => target.id));
    for (const id of this.failures.keys()) if (!known.has(id)) this.failures.delete(id);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length && !this.stopping.signal.aborted) {
        const target = targets[next++] as (typeof targets)[number];
        await this.probeOne(target.id, target.ipAddress, target.port);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, targets.length) }, worker));
  }

  private schedule(): void {
    if (this.stopping.signal.aborted) return;
    this.timer = this.clock.setTimer(this.options.intervalMs, () => {
      this.round = this.probeAll()
        .catch((error: unknown) => this.options.log.error({ err: error }, "reachability probe round failed"))
        .finally(() => this.schedule());
    });
  }

  private async probeOne(id: AgentId, ipAddress: string, port: number): Promise<void> {
    const address = isIP(ipAddress) === 6 ? `[${ipAddress}]:${port}` : `${ipAddress}:${port}`;
    const error = await this.check(`http://${address}/api/version`);
    if (this.stopping.signal.aborted) return;
    if (error === undefined) {
      this.failures.delete(id);
      await this.verdict(id, undefined);
      return;
    }
    const failures = (this.failures.get(id) ?? 0) + 1;
    this.failures.set(id, failures);
    if (failures >= PROBE_FAILURES) await this.verdict(id, `GET http://${address}/api/version failed ${failures} times in a row: ${error}`);
  }

  private async verdict(id: AgentId, unreachable: string | undefined): Promise<void> {
    try {
      await this.options.registry.setReachability(id, unreachable);
    } catch (error) {
      this.options.log.warn({ err: error, agentId: id }, "could not record a node's reachability; the next round tries again");
    }
  }

  /** Undefined when the node's Ollama answered 2xx; else what went wrong. */
  private async check(url: string): Promise<string | undefined> {
    const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
    try {
      const response = await (this.options.fetch ?? fetch)(url, { signal: AbortSignal.any([timeout, this.stopping.signal]) });
      await response.arrayBuffer().catch(() => undefined);
      return response.ok ? undefined : `HTTP ${response.status}`;
    } catch (error) {
      if (timeout.aborted) return `no answer within ${PROBE_TIMEOUT_MS / 1000} s`;
      const cause = (error as Error).cause;
      if (cause instanceof Error) return (cause as NodeJS.ErrnoException).code ?? cause.message;
      return (error as Error).message;
    }
  }
}
