// The node daemon's lifecycle: load (or create) its id, probe Ollama, register, hold one Heartbeat stream,
// and reconnect after any failure with full-jitter backoff whose window never outgrows the heartbeat interval
// the registry last told (or after the server's retry-after hint); on stop, say `leaving` and wait for the ack.
// Time, randomness, the Ollama probe and the connection are injected so the lifecycle can be tested.
//
// While Ollama does not answer, the node registers anyway, with the last version it knew (empty at first)
// and `draining: true` in its beats, so the registry shows the box alive but no scheduler routes work to it;
// the probe runs every heartbeat interval, and the first answer is sent at once in a beat with the version and
// `draining: false`. The registry thus tells "the box is gone" (OFFLINE) from "its Ollama is down" (draining).
// With each probe the node's inventory is collected too (inventory-collector.ts) and reported as
// inventory-reporter.ts decides.

import * as grpc from "@grpc/grpc-js";
import { v4 } from "uuid";
import type { RegisterResponse } from "../../gen/registry/v1/registry_pb.js";
import { type Clock, type Timer, systemClock } from "../common/clock.js";
import { type Log, silentLog } from "../common/log.js";
import { loadOrCreateAgentState, saveAgentState } from "./agent-state-file.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { HeartbeatStream, type NodeReport } from "./heartbeat-stream.js";
import type { Inventory } from "../registry/inventory.js";
import { InventoryCollector } from "./inventory-collector.js";
import { InventoryReporter } from "./inventory-reporter.js";
import { inventoryToWire } from "../common/inventory-wire.js";
import { type OllamaProbeResult, probeOllama } from "./ollama-probe.js";
import {
  type ConnectRegistry,
  type ConnectionOptions,
  type RegistryConnection,
  RpcFailure,
  type StreamEnd,
  connectRegistry,
  durationMs,
  statusName,
} from "./registry-connection.js";

/** The node as it registers. */
export interface NodeDescription {
  readonly hostname: string;
  /** Empty: the server uses the address the daemon connects from. */
  readonly ipAddress: string;
  /** Ollama's port. */
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface NodeAgentOptions {
  /**
   * host:port of the registry's gRPC listener; replicas as `a:1,b:2,c:3`, tried in turn: a connection that
   * ends (a broken stream, a refused Register) moves the next attempt to the next address.
   */
  readonly registryAddress: string;
  readonly ollamaUrl: string;
  readonly stateFile: string;
  readonly node: NodeDescription;
  /** TLS credentials and bearer token for the default connection (ignored with an injected `connect`). */
  readonly connection?: ConnectionOptions;
  /** Fast-moving inventory figures are reported at most once per this many ms (default 60 s). */
  readonly inventoryIntervalMs?: number;
}

export interface NodeAgentDeps {
  readonly log?: Log;
  /** Timers for beats, probes and backoff. The default's timers keep the process alive: it is a daemon. */
  readonly clock?: Clock;
  /** Uniform in [0, 1), for the backoff's jitter. */
  readonly random?: () => number;
  readonly backoff?: Omit<BackoffOptions, "random">;
  readonly newId?: () => string;
  readonly probe?: (signal: AbortSignal) => Promise<OllamaProbeResult>;
  /**
   * Collects the node's inventory. Default: nvidia-smi and Ollama's /api/tags and /api/ps, unless `probe` is
   * injected (a test of the lifecycle), which then reports no inventory unless this is injected too.
   */
  readonly collectInventory?: (signal: AbortSignal) => Promise<Inventory>;
  readonly connect?: ConnectRegistry;
  /** How long to wait for the ack of the `leaving` beat on stop (default 2 s). */
  readonly leaveTimeoutMs?: number;
}

/** How the daemon ended: stopped, or failed on something retrying cannot fix (the error says what). */
export type AgentExit = { readonly kind: "stopped" } | { readonly kind: "failed"; readonly error: Error };

/** How one connection ended: on something retrying cannot fix, or to be retried (when the server said, if it did). */
type AttemptEnd = { readonly fatal: Error } | { readonly retryAfterMs: number | undefined };

const RETRY: AttemptEnd = { retryAfterMs: undefined };

export type AgentPhase = "idle" | "registering" | "connecting" | "connected" | "waiting" | "stopping" | "stopped";

/** Until the server says otherwise (RegisterResponse.heartbeat_interval), the design's default. */
const DEFAULT_INTERVAL_MS = 30_000;
const REGISTER_DEADLINE_MS = 10_000;
const DEFAULT_LEAVE_TIMEOUT_MS = 2000;

/** Codes on which retrying the same Register cannot succeed: the node's own description is wrong. */
const PERMANENT_REGISTER_FAILURES = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED]);

/**
 * Refusals an operator must act on (a wrong token, another node's id). Retried with backoff all the same,
 * since the fix is on the server's side (a token file reloaded, an admin releasing the id), but logged as
 * errors with the server's message, which says what to do.
 */
const CREDENTIAL_FAILURES = new Set([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]);

/** A daemon does nothing but wait between beats: its timers keep the process alive. */
const daemonClock: Clock = systemClock({ keepAlive: true });

export class NodeAgent {
  private readonly log: Log;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly connect: ConnectRegistry;
  private readonly probe: (signal: AbortSignal) => Promise<OllamaProbeResult>;
  private readonly collectInventory: ((signal: AbortSignal) => Promise<Inventory>) | undefined;
  private readonly inventory: InventoryReporter;
  private readonly newId: () => string;
  private readonly leaveTimeoutMs: number;
  /** Aborted on stop: cancels an Ollama probe in flight. */
  private readonly stopping = new AbortController();

  private currentPhase: AgentPhase = "idle";
  private id: string | undefined;
  /** The secret the registry gave this id, kept in the state file; undefined until the first Register. */
  private secret: string | undefined;
  private intervalMs = DEFAULT_INTERVAL_MS;
  /** Whether the current registry is believed to know this id; a NOT_FOUND stream clears it. */
  private registered = false;
  /** Whether a failure was already logged since the stream last worked: one warning per outage. */
  private outageLogged = false;
  /** Whether a refusal of this node's credentials was logged since the stream last worked: one error per cause. */
  private refusalLogged = false;
  private connectedOnce = false;
  private ollama: { reachable: boolean | undefined; version: string } = { reachable: undefined, version: "" };
  private probeTimer: Timer | undefined;
  private probing = false;
  private connection: RegistryConnection | undefined;
  private readonly addresses: readonly string[];
  /** The attempts made, which picks the address of the next. */
  private attempts = 0;
  private stream: HeartbeatStream | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<AgentExit> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly options: NodeAgentOptions,
    deps: NodeAgentDeps = {},
  ) {
    this.log = deps.log ?? silentLog;
    this.clock = deps.clock ?? daemonClock;
    this.backoff = new Backoff({ ...deps.backoff, ...(deps.random === undefined ? {} : { random: deps.random }) });
    this.connect = deps.connect ?? ((address) => connectRegistry(address, options.connection));
    this.addresses = options.registryAddress.split(",").filter((address) => address !== "");
    this.probe = deps.probe ?? ((signal) => probeOllama(options.ollamaUrl, { signal }));
    const collector = new InventoryCollector({ ollamaUrl: options.ollamaUrl, log: this.log });
    this.collectInventory = deps.collectInventory ?? (deps.probe === undefined ? (signal) => collector.collect(signal) : undefined);
    this.inventory = new InventoryReporter(this.clock, options.inventoryIntervalMs);
    this.newId = deps.newId ?? v4;
    this.leaveTimeoutMs = deps.leaveTimeoutMs ?? DEFAULT_LEAVE_TIMEOUT_MS;
  }

  get phase(): AgentPhase {
    return this.currentPhase;
  }

  /** The node's id, once start() has loaded or created it. */
  get agentId(): string | undefined {
    return this.id;
  }

  /** Resolves once the daemon has ended (after stop(), or on a failure retrying cannot fix). */
  get done(): Promise<AgentExit> {
    if (this.running === undefined) throw new Error("NodeAgent.done: call start() first");
    return this.running;
  }

  /**
   * Loads the node's id from the state file (creating it on first start) and starts the connection loop in
   * the background. Rejects if the state file cannot be read, parsed or written: the node would not know who
   * it is. Resolves with the id; registration follows (and is retried) on its own.
   */
  async start(): Promise<string> {
    if (this.currentPhase !== "idle") throw new Error("NodeAgent.start: already started");
    const { state, created } = await loadOrCreateAgentState(this.options.stateFile, this.newId);
    this.id = state.agentId;
    this.secret = state.agentSecret;
    this.log.info(
      { agentId: this.id, stateFile: this.options.stateFile },
      created ? "new agent id generated and saved" : "agent id loaded",
    );
    this.currentPhase = "registering";
    this.running = this.run(this.id);
    return this.id;
  }

  /**
   * Stops: if the stream is up, sends `leaving` (the node turns OFFLINE at once) and waits for the ack, at most
   * the leave timeout; then closes everything. Safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      const stream = this.stream;
      const wasConnected = stream?.connected === true;
      this.currentPhase = "stopping";
      this.stopping.abort();
      this.probeTimer?.cancel();
      this.wake?.();
      if (stream !== undefined && wasConnected) {
        const acked = await stream.leave(this.leaveTimeoutMs);
        if (acked) this.log.info({ agentId: this.id }, "left the registry: marked offline");
        else {
          this.log.warn(
            { agentId: this.id, timeoutMs: this.leaveTimeoutMs },
            "the registry did not acknowledge leaving in time; it will mark this node offline after its timeout",
          );
        }
      } else if (this.running !== undefined) {
        this.log.info(
          { agentId: this.id },
          "stopping while not connected; the registry will mark this node offline after its timeout",
        );
      }
      this.connection?.close();
      if (this.running !== undefined) await this.running;
      this.currentPhase = "stopped";
    })();
    return this.stopped;
  }

  private get isStopping(): boolean {
    return this.stopping.signal.aborted;
  }

  private async run(agentId: string): Promise<AgentExit> {
    await this.probeOllama();
    while (!this.isStopping) {
      const end = await this.attempt(agentId);
      if ("fatal" in end) {
        this.log.error({ agentId, err: end.fatal }, "giving up: the registry rejected this node");
        // Ends the probe loop as stop() would; there is no stream to leave.
        this.stopping.abort();
        this.probeTimer?.cancel();
        this.currentPhase = "stopped";
        return { kind: "failed", error: end.fatal };
      }
      if (this.isStopping) break;
      // Never a window wider than the told interval: once the registry is back, so is this node within one
      // interval, well inside the grace a restarted registry gives (one AGENT_TIMEOUT). A server that said
      // when to come back (a rate limit) is obeyed instead.
      const delayMs =
        end.retryAfterMs === undefined
          ? this.backoff.next(this.intervalMs)
          : this.backoff.retryAfter(end.retryAfterMs, this.intervalMs);
      this.log.debug({ delayMs, retryAfterMs: end.retryAfterMs }, "reconnecting after a pause");
      this.currentPhase = "waiting";
      await this.pause(delayMs);
    }
    return { kind: "stopped" };
  }

  /** One connection: register if needed, then hold the stream until it ends. */
  private async attempt(agentId: string): Promise<AttemptEnd> {
    const address = this.addresses[this.attempts++ % this.addresses.length] ?? this.options.registryAddress;
    const connection = this.connect(address);
    this.connection = connection;
    try {
      if (!this.registered) {
        this.currentPhase = "registering";
        let response: RegisterResponse;
        try {
          response = await connection.register(
            {
              agentId,
              hostname: this.options.node.hostname,
              ipAddress: this.options.node.ipAddress,
              port: this.options.node.port,
              ollamaVersion: this.ollama.version,
              labels: { ...this.options.node.labels },
              agentSecret: this.secret ?? "",
              inventory: this.inventory.reported === undefined ? undefined : inventoryToWire(this.inventory.reported),
            },
            REGISTER_DEADLINE_MS,
          );
        } catch (error) {
          return this.registerFailed(error);
        }
        if (response.agentSecret !== "") {
          const failure = await this.keepSecret(agentId, response.agentSecret);
          if (failure !== undefined) return { fatal: failure };
        }
        this.registered = true;
        this.useInterval(durationMs(response.heartbeatInterval) ?? this.intervalMs);
        this.log.info(
          {
            agentId,
            hostname: this.options.node.hostname,
            address: `${response.agent?.ipAddress ?? "?"}:${response.agent?.port ?? this.options.node.port}`,
            ollamaVersion: this.ollama.version,
            heartbeatIntervalMs: this.intervalMs,
            registry: address,
          },
          "registered",
        );
      }
      if (this.isStopping) return RETRY;
      this.currentPhase = "connecting";
      const end = await this.holdStream(agentId, connection, address);
      this.streamEnded(end);
      return { retryAfterMs: end.retryAfterMs };
    } finally {
      connection.close();
      if (this.connection === connection) this.connection = undefined;
    }
  }

  private holdStream(agentId: string, connection: RegistryConnection, address: string): Promise<StreamEnd> {
    const stream = new HeartbeatStream(connection.heartbeat(), {
      agentId,
      agentSecret: this.secret,
      intervalMs: this.intervalMs,
      clock: this.clock,
      report: () => this.report(),
      onConnected: () => {
        if (this.isStopping) return;
        this.currentPhase = "connected";
        this.log.info(
          { agentId, registry: address, draining: this.report().draining },
          this.connectedOnce ? "heartbeat stream reconnected" : "heartbeat stream connected",
        );
        this.connectedOnce = true;
        this.outageLogged = false;
        this.refusalLogged = false;
      },
      onHealthy: () => this.backoff.reset(),
      onIntervalChanged: (intervalMs) => {
        this.log.info({ heartbeatIntervalMs: intervalMs }, "the registry changed the heartbeat interval");
        this.useInterval(intervalMs);
      },
    });
    this.stream = stream;
    stream.start();
    return stream.ended.finally(() => {
      if (this.stream === stream) this.stream = undefined;
    });
  }

  private streamEnded(end: StreamEnd): void {
    if (this.isStopping) return;
    const fields = { agentId: this.id, code: statusName(end.code), details: end.details, retryAfterMs: end.retryAfterMs };
    switch (end.code) {
      case grpc.status.NOT_FOUND:
        // Deregistered, or a registry that lost its file: come back with the same id.
        this.registered = false;
        this.log.warn(fields, "the registry does not know this agent; registering again with the same id");
        break;
      case grpc.status.UNAUTHENTICATED:
      case grpc.status.PERMISSION_DENIED:
        if (this.refusalLogged) this.log.debug(fields, "the registry still refuses this node's heartbeat stream; retrying with backoff");
        else this.log.error(fields, "the registry refuses this node's heartbeat stream; retrying with backoff");
        this.refusalLogged = true;
        break;
      case grpc.status.ABORTED:
        this.log.warn(
          { ...fields, stateFile: this.options.stateFile },
          "heartbeat stream superseded by a newer one for this agent id (a second daemon with the same state file?); reconnecting",
        );
        break;
      default:
        if (this.outageLogged) this.log.debug(fields, "heartbeat stream failed again; reconnecting with backoff");
        else this.log.warn(fields, "heartbeat stream lost; reconnecting with backoff");
    }
    this.outageLogged = true;
  }

  private registerFailed(error: unknown): AttemptEnd {
    if (this.isStopping) return RETRY;
    if (!(error instanceof RpcFailure)) {
      this.log.error({ err: error }, "Register failed unexpectedly; retrying with backoff");
      return RETRY;
    }
    if (PERMANENT_REGISTER_FAILURES.has(error.code)) {
      return {
        fatal: new Error(
          `the registry at ${this.options.registryAddress} rejected this node's registration: ${error.details} (${statusName(error.code)})`,
        ),
      };
    }
    const fields = {
      registry: this.options.registryAddress,
      code: statusName(error.code),
      details: error.details,
      retryAfterMs: error.retryAfterMs,
    };
    if (CREDENTIAL_FAILURES.has(error.code) && !this.refusalLogged) {
      this.log.error(fields, "the registry refuses this node's registration; retrying with backoff");
      this.refusalLogged = true;
    } else if (this.outageLogged) this.log.debug(fields, "cannot register yet; retrying with backoff");
    else this.log.warn(fields, "cannot register with the registry; retrying with backoff");
    this.outageLogged = true;
    return { retryAfterMs: error.retryAfterMs };
  }

  /**
   * Saves the secret the registry just gave this id beside the id, before anything else: without it a
   * restarted daemon could not register its own id again. A state file that cannot be written is fatal.
   */
  private async keepSecret(agentId: string, secret: string): Promise<Error | undefined> {
    try {
      await saveAgentState(this.options.stateFile, { agentId, agentSecret: secret });
    } catch (error) {
      return new Error(
        `cannot keep the secret the registry gave agent ${agentId}: ${(error as Error).message}. ` +
          `Fix the state file's directory, and have an admin deregister ${agentId} if the registry refuses it afterwards`,
        { cause: error },
      );
    }
    const replaced = this.secret !== undefined;
    this.secret = secret;
    this.log.info(
      { agentId, stateFile: this.options.stateFile },
      replaced ? "the registry gave this id a new secret (it had forgotten the id); saved" : "agent secret received and saved",
    );
    return undefined;
  }

  private report(): NodeReport {
    // Unknown (never probed) counts as down: no work until Ollama has answered once.
    return { ollamaVersion: this.ollama.version, draining: this.ollama.reachable !== true, inventory: this.inventory.reported };
  }

  /** Probes Ollama once, logs a change of reachability, tells the registry at once, and re-arms the probe. */
  private async probeOllama(): Promise<void> {
    if (this.probing || this.isStopping) return;
    this.probing = true;
    let result: OllamaProbeResult;
    try {
      result = await this.probe(this.stopping.signal);
    } catch (error) {
      // The real probe reports failures as values; an injected one that throws means the same: no answer.
      result = { reachable: false, reason: error instanceof Error ? error.message : String(error) };
    } finally {
      this.probing = false;
    }
    if (this.isStopping) return;
    const before = this.ollama;
    if (result.reachable) {
      this.ollama = { reachable: true, version: result.version };
      if (before.reachable !== true) {
        this.log.info(
          { ollamaUrl: this.options.ollamaUrl, ollamaVersion: result.version },
          before.reachable === false ? "ollama is back" : "ollama answered",
        );
      } else if (before.version !== result.version) {
        this.log.info({ ollamaVersion: result.version, previous: before.version }, "ollama version changed");
      }
    } else {
      this.ollama = { reachable: false, version: before.version };
      if (before.reachable !== false) {
        this.log.warn(
          { ollamaUrl: this.options.ollamaUrl, reason: result.reason, probeIntervalMs: this.intervalMs },
          "ollama is unreachable; the node stays registered as draining and retries every heartbeat interval",
        );
      }
    }
    await this.takeInventory();
    if (this.isStopping) return;
    this.stream?.reportChanged();
    this.armProbe();
  }

  /** Collects the inventory (a collector that fails keeps the last one: it reports its own problems). */
  private async takeInventory(): Promise<void> {
    if (this.collectInventory === undefined) return;
    try {
      this.inventory.offer(await this.collectInventory(this.stopping.signal));
    } catch (error) {
      this.log.warn({ err: error }, "could not collect the node's inventory; keeping the last one");
    }
  }

  private armProbe(): void {
    this.probeTimer?.cancel();
    if (this.isStopping) return;
    this.probeTimer = this.clock.setTimer(this.intervalMs, () => void this.probeOllama());
  }

  private useInterval(intervalMs: number): void {
    if (intervalMs === this.intervalMs) return;
    this.intervalMs = intervalMs;
    if (!this.probing) this.armProbe();
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimer(ms, () => resolve());
      this.wake = () => {
        timer.cancel();
        resolve();
      };
    }).finally(() => {
      this.wake = undefined;
    });
  }
}
