// NodeAgent on fake time with a fake registry connection: when it reconnects, what its beats say, and what it
// logs. The real server is exercised in test/integration/agent-daemon.test.ts.

import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import {
  type HeartbeatRequestSchema,
  type HeartbeatResponse,
  HeartbeatResponseSchema,
  RegisterResponseSchema,
} from "../../gen/registry/v1/registry_pb.js";
import type { Log } from "../../src/common/log.js";
import { HEALTHY_ACKS } from "../../src/agent/heartbeat-stream.js";
import { NodeAgent } from "../../src/agent/node-agent.js";
import type { OllamaProbeResult } from "../../src/agent/ollama-probe.js";
import { type HeartbeatCall, type RegistryConnection, RpcFailure, type StreamEnd } from "../../src/agent/registry-connection.js";
import { FakeClock } from "../support/fake-clock.js";
import type { Inventory } from "../../src/registry/inventory.js";
import { anInventory } from "../store/agent-records.js";
import { settle } from "../support/settle.js";
import { TempDirs } from "../store/agent-records.js";

const dirs = new TempDirs();
const agents: NodeAgent[] = [];

afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.stop();
  await dirs.removeAll();
});

interface Logged {
  readonly level: string;
  readonly message: string;
  readonly fields: object;
}

function memoryLog(lines: Logged[]): Log {
  const at = (level: string) => (fields: object, message: string) => lines.push({ level, message, fields });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

type Beat = MessageInitShape<typeof HeartbeatRequestSchema>;

/** A protobuf Duration of `ms`. */
function duration(ms: number): { seconds: bigint; nanos: number } {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** A registry that is down (Register and streams fail UNAVAILABLE) or up (acks every beat at once). */
class FakeRegistry {
  up = false;
  /** The heartbeat interval it tells, in RegisterResponse and in every ack. */
  intervalMs = 1000;
  /** How long each ack (but that of `leaving`) takes to arrive, in fake ms (0: at once, in a microtask). */
  ackDelayMs = 0;
  /** When set, Register fails with it even while up. */
  rejectWith: RpcFailure | undefined;
  readonly connectedAt: number[] = [];
  readonly registered: string[] = [];
  /** The agent_secret of each Register, in order. */
  readonly registerSecrets: string[] = [];
  /** Whether each Register carried an inventory. */
  readonly registerInventories: boolean[] = [];
  /** When set, Register returns it as the id's new secret (as the first Register of an id does). */
  issueSecret: string | undefined;
  readonly beats: Beat[] = [];
  /** When each beat arrived (monotonic fake time). */
  readonly beatsAt: number[] = [];
  private streams: Array<(end: StreamEnd) => void> = [];

  constructor(private readonly clock: FakeClock) {}

  /** The address of each connection, in order. */
  readonly connectedTo: string[] = [];

  connect = (address: string): RegistryConnection => {
    this.connectedAt.push(this.clock.now());
    this.connectedTo.push(address);
    return {
      register: (request) => {
        if (this.rejectWith !== undefined) return Promise.reject(this.rejectWith);
        if (!this.up) return Promise.reject(new RpcFailure(grpc.status.UNAVAILABLE, "connect ECONNREFUSED"));
        this.registered.push(String(request.agentId));
        this.registerSecrets.push(request.agentSecret ?? "");
        this.registerInventories.push(request.inventory !== undefined);
        return Promise.resolve(
          create(RegisterResponseSchema, {
            heartbeatInterval: duration(this.intervalMs),
            agentTimeout: { seconds: 3n, nanos: 0 },
            agentSecret: this.issueSecret ?? "",
          }),
        );
      },
      heartbeat: () => this.stream(),
      close: () => undefined,
    };
  };

  /** Ends every open stream with `code` (and the server's retry hint, if given). */
  endStreams(code: grpc.status, retryAfterMs?: number): void {
    for (const end of this.streams.splice(0)) end({ code, details: "ended by the test", retryAfterMs });
  }

  private stream(): HeartbeatCall {
    if (!this.up) {
      return {
        send: () => undefined,
        onAck: () => undefined,
        end: () => undefined,
        cancel: () => undefined,
        ended: Promise.resolve({ code: grpc.status.UNAVAILABLE, details: "connect ECONNREFUSED" }),
      };
    }
    let listener: ((ack: HeartbeatResponse) => void) | undefined;
    let finish!: (end: StreamEnd) => void;
    const ended = new Promise<StreamEnd>((resolve) => (finish = resolve));
    let open = true;
    const close = (end: StreamEnd): void => {
      if (!open) return;
      open = false;
      finish(end);
    };
    this.streams.push(close);
    return {
      send: (beat) => {
        if (!open) return;
        this.beats.push(beat);
        this.beatsAt.push(this.clock.monotonic());
        const ack = create(HeartbeatResponseSchema, { seq: beat.seq ?? 0n, heartbeatInterval: duration(this.intervalMs) });
        // `leaving` is acked at once: stop() in afterEach does not move fake time.
        if (this.ackDelayMs === 0 || beat.leaving === true) queueMicrotask(() => listener?.(ack));
        else this.clock.setTimer(this.ackDelayMs, () => open && listener?.(ack));
      },
      onAck: (fn) => (listener = fn),
      end: () => close({ code: grpc.status.OK, details: "" }),
      cancel: () => close({ code: grpc.status.CANCELLED, details: "Cancelled on client" }),
      ended,
    };
  }
}

/** `values` in turn, one a draw, round and round: a pinned `random`. */
function draws(...values: number[]): () => number {
  let next = 0;
  return () => values[next++ % values.length] as number;
}

async function startAgent(
  options: {
    random?: () => number;
    probe?: () => OllamaProbeResult;
    up?: boolean;
    rejectWith?: RpcFailure;
    registryAddress?: string;
    inventory?: () => Inventory;
    inventoryIntervalMs?: number;
  } = {},
): Promise<{ agent: NodeAgent; clock: FakeClock; registry: FakeRegistry; log: Logged[]; stateFile: string }> {
  const clock = new FakeClock();
  const stateFile = `${await dirs.make()}/agent-state.json`;
  const registry = new FakeRegistry(clock);
  registry.up = options.up ?? false;
  registry.rejectWith = options.rejectWith;
  const log: Logged[] = [];
  const agent = new NodeAgent(
    {
      registryAddress: options.registryAddress ?? "127.0.0.1:50051",
      ollamaUrl: "http://127.0.0.1:11434",
      stateFile,
      node: { hostname: "gpu-01", ipAddress: "", port: 11434, labels: {} },
      ...(options.inventoryIntervalMs === undefined ? {} : { inventoryIntervalMs: options.inventoryIntervalMs }),
    },
    {
      clock,
      ...(options.inventory === undefined ? {} : { collectInventory: () => Promise.resolve((options.inventory as () => Inventory)()) }),
      log: memoryLog(log),
      random: options.random ?? draws(0.999),
      connect: registry.connect,
      probe: () => Promise.resolve(options.probe?.() ?? { reachable: true, version: "0.5.7" }),
    },
  );
  agents.push(agent);
  await agent.start();
  await settle();
  return { agent, clock, registry, log, stateFile };
}

/**
 * Runs fake time forward one timer at a time, letting the agent's promises run after each, until the agent
 * opens its next connection; fake time then stands at that connection's instant.
 */
async function untilNextConnect(clock: FakeClock, registry: FakeRegistry): Promise<void> {
  const count = registry.connectedAt.length;
  const giveUpAt = clock.monotonic() + 10 * 60_000;
  // What the test just did (a stream ended) may schedule the agent's next timer: let it, before time moves.
  await settle();
  while (registry.connectedAt.length === count) {
    if (clock.monotonic() > giveUpAt || !clock.advanceToNextTimer()) throw new Error("the agent did not connect again");
    await settle();
  }
}

/** The waits before the agent's next `count` connection attempts, each measured from the attempt before. */
async function nextGaps(clock: FakeClock, registry: FakeRegistry, count: number): Promise<number[]> {
  const gaps: number[] = [];
  for (let attempt = 0; attempt < count; attempt++) {
    const before = registry.connectedAt.at(-1) as number;
    await untilNextConnect(clock, registry);
    gaps.push((registry.connectedAt.at(-1) as number) - before);
  }
  return gaps;
}

/** Moves fake time forward in steps, letting the agent's promises run after each. */
async function advance(clock: FakeClock, ms: number, step = 1): Promise<void> {
  for (let passed = 0; passed < ms; passed += step) {
    clock.advance(step);
    await settle();
  }
}

describe("NodeAgent and its secret", () => {
  it("keeps the secret its first Register returns beside its id, and proves the id with it from then on", async () => {
    const { agent, clock, registry, stateFile } = await startAgent();
    registry.issueSecret = "the-secret";
    registry.up = true;
    // Saving the secret is real file I/O: give it real time, too, until the stream's first beat.
    for (let step = 0; step < 200 && registry.beats.length === 0; step++) {
      await advance(clock, 50, 50);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(registry.registerSecrets).toEqual([""]);
    expect(JSON.parse(await readFile(stateFile, "utf8"))).toEqual({ agent_id: agent.agentId, agent_secret: "the-secret" });
    expect(registry.beats[0]).toMatchObject({ agentId: agent.agentId, agentSecret: "the-secret" });
    expect(registry.beats[1]?.agentSecret).toBeUndefined();

    // Deregistered: it registers again with the secret, and the new stream's first beat carries it too.
    registry.issueSecret = undefined;
    const beatsBefore = registry.beats.length;
    registry.endStreams(grpc.status.NOT_FOUND);
    await advance(clock, 2000, 50);
    expect(registry.registerSecrets).toEqual(["", "the-secret"]);
    expect(registry.beats[beatsBefore]).toMatchObject({ agentId: agent.agentId, agentSecret: "the-secret" });
  });

  it("retries a registry that refuses its credentials with backoff, logging the server's message once as an error", async () => {
    const { clock, registry, log } = await startAgent();
    registry.rejectWith = new RpcFailure(grpc.status.PERMISSION_DENIED, "agent x is held by another node's secret: ...");

    // The same waits as for a registry that is down: the top of each window, as random is pinned to 0.999.
    expect(await nextGaps(clock, registry, 5)).toEqual([499, 999, 1998, 3996, 7992]);
    expect(log.filter((line) => line.level === "error")).toEqual([
      expect.objectContaining({
        message: "the registry refuses this node's registration; retrying with backoff",
        fields: expect.objectContaining({ code: "PERMISSION_DENIED" }) as unknown,
      }),
    ]);
  });
});

describe("NodeAgent", () => {
  it("waits random × a window that doubles from 0.5 s after each failed attempt", async () => {
    const { clock, registry } = await startAgent({ random: draws(0.5) });

    const gaps = await nextGaps(clock, registry, 6);

    // Half of each window: 0.5, 1, 2, 4, 8, 16 s.
    expect(gaps).toEqual([250, 500, 1000, 2000, 4000, 8000]);
  });

  it("draws each delay from anywhere in its window, from 0 up to just below it", async () => {
    const { clock, registry } = await startAgent({ random: draws(0, 0.999, 0, 0.999) });

    const gaps = await nextGaps(clock, registry, 4);

    // The bottom of the 0.5 s window, the top of the 1 s one, the bottom of 2 s, the top of 4 s.
    expect(gaps).toEqual([0, 999, 0, 3996]);
  });

  it("never waits longer than 30 s however long the registry stays down", async () => {
    const { clock, registry } = await startAgent({ random: draws(0.999) });

    const gaps = await nextGaps(clock, registry, 9);

    // The top of each window: 0.5, 1, 2, 4, 8, 16 s, then 30 s (not 32) from then on.
    expect(gaps).toEqual([499, 999, 1998, 3996, 7992, 15_984, 29_970, 29_970, 29_970]);
  });

  /**
   * Two refused attempts (the window grows to 4 s), then a third that opens a stream; time stands at its start.
   * The registry tells a 10 s interval, so the interval does not cap the 4 s window.
   */
  async function connectedAfterTwoRetries(): Promise<{ clock: FakeClock; registry: FakeRegistry }> {
    const { clock, registry } = await startAgent({ random: draws(0.999) });
    registry.intervalMs = 10_000;
    expect(await nextGaps(clock, registry, 2)).toEqual([499, 999]);
    registry.up = true;
    expect(await nextGaps(clock, registry, 1)).toEqual([1998]);
    return { clock, registry };
  }

  it(`starts over from the first window once a stream has had ${HEALTHY_ACKS} acks`, async () => {
    const { clock, registry } = await connectedAfterTwoRetries();
    await advance(clock, (HEALTHY_ACKS - 1) * 10_000, 50); // a beat an interval, each acked at once
    expect(registry.beats).toHaveLength(HEALTHY_ACKS);
    const droppedAt = clock.now();

    registry.endStreams(grpc.status.UNAVAILABLE);
    await untilNextConnect(clock, registry);

    // The top of the first window (0.5 s), not of the 4 s one the outage had reached.
    expect((registry.connectedAt.at(-1) as number) - droppedAt).toBe(499);
  });

  it(`keeps widening the window after a stream that dropped with fewer than ${HEALTHY_ACKS} acks`, async () => {
    const { clock, registry } = await connectedAfterTwoRetries();
    await advance(clock, (HEALTHY_ACKS - 2) * 10_000, 50);
    expect(registry.beats).toHaveLength(HEALTHY_ACKS - 1);
    const droppedAt = clock.now();

    registry.endStreams(grpc.status.UNAVAILABLE);
    await untilNextConnect(clock, registry);

    // The top of the 4 s window the outage had reached: the short-lived stream did not count as recovery.
    expect((registry.connectedAt.at(-1) as number) - droppedAt).toBe(3996);
  });

  it("warns once per outage, not once per retry", async () => {
    const { clock, registry, log } = await startAgent();

    await nextGaps(clock, registry, 5);
    registry.up = true;
    await untilNextConnect(clock, registry);
    await advance(clock, 40_000, 100);

    // Six refused attempts, then one stream that held.
    expect(registry.connectedAt).toHaveLength(7);
    expect(log.filter((line) => line.level === "warn").map((line) => line.message)).toEqual([
      "cannot register with the registry; retrying with backoff",
    ]);
    expect(log.filter((line) => line.level === "info").map((line) => line.message)).toEqual([
      "new agent id generated and saved",
      "ollama answered",
      "registered",
      "heartbeat stream connected",
    ]);
  });

  it("registers while Ollama is down with draining beats, and undrains in a beat once it answers", async () => {
    let ollama: OllamaProbeResult = { reachable: false, reason: "ECONNREFUSED" };
    const { clock, registry, log } = await startAgent({ probe: () => ollama });
    registry.up = true;
    await advance(clock, 1000, 50);
    expect(registry.registered).toHaveLength(1);
    expect(registry.beats[0]).toMatchObject({ draining: true });
    expect(registry.beats[0]?.ollamaVersion).toBeUndefined();

    ollama = { reachable: true, version: "0.5.7" };
    await advance(clock, 1000, 50);

    expect(registry.beats.find((beat) => beat.draining === false)).toMatchObject({ ollamaVersion: "0.5.7", draining: false });
    expect(log.filter((line) => line.message.startsWith("ollama")).map((line) => [line.level, line.message])).toEqual([
      ["warn", "ollama is unreachable; the node stays registered as draining and retries every heartbeat interval"],
      ["info", "ollama is back"],
    ]);
  });

  it("says leaving on stop and waits for the ack", async () => {
    const { agent, clock, registry } = await startAgent();
    registry.up = true;
    await advance(clock, 2000, 50);

    await agent.stop();

    expect(registry.beats.at(-1)).toMatchObject({ leaving: true });
    expect(agent.phase).toBe("stopped");
    expect(clock.pendingTimers).toBe(0);
  });

  it("after a superseded stream (ABORTED) warns, hinting at a second daemon, and reconnects without registering", async () => {
    const { clock, registry, log } = await startAgent({ up: true });
    await advance(clock, 1000, 50);

    registry.endStreams(grpc.status.ABORTED);
    await advance(clock, 1000, 50);

    expect(log.filter((line) => line.level === "warn").map((line) => line.message)).toEqual([
      "heartbeat stream superseded by a newer one for this agent id (a second daemon with the same state file?); reconnecting",
    ]);
    expect(registry.connectedAt).toHaveLength(2);
    expect(registry.registered).toHaveLength(1);
  });

  it("moves to the next of several registry addresses each time a stream breaks, registering only once", async () => {
    const { agent, clock, registry } = await startAgent({ up: true, registryAddress: "10.0.0.1:50051,10.0.0.2:50051,10.0.0.3:50051" });
    await advance(clock, 1000, 50);
    for (let broken = 0; broken < 3; broken++) {
      const before = clock.now();
      registry.endStreams(grpc.status.UNAVAILABLE);
      await untilNextConnect(clock, registry);
      // Within the reconnect rule: never a wait past the told interval.
      expect((registry.connectedAt.at(-1) as number) - before).toBeLessThanOrEqual(registry.intervalMs);
      await advance(clock, 200, 50);
    }
    expect(registry.connectedTo).toEqual(["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051", "10.0.0.1:50051"]);
    expect(registry.registered).toEqual([agent.agentId]);
    expect(registry.beats.length).toBeGreaterThan(3);
  });

  it("after NOT_FOUND registers again with the same id", async () => {
    const { agent, clock, registry } = await startAgent({ up: true });
    await advance(clock, 1000, 50);

    registry.endStreams(grpc.status.NOT_FOUND);
    await advance(clock, 1000, 50);

    expect(registry.registered).toEqual([agent.agentId, agent.agentId]);
  });

  it("gives up, saying why, when the registry rejects the node's description", async () => {
    const { agent, clock, registry } = await startAgent();
    registry.rejectWith = new RpcFailure(grpc.status.INVALID_ARGUMENT, "hostname: must be a DNS host name");
    await advance(clock, 1000, 50);

    const exit = await agent.done;

    expect(exit.kind).toBe("failed");
    expect(exit.kind === "failed" && exit.error.message).toBe(
      "the registry at 127.0.0.1:50051 rejected this node's registration: hostname: must be a DNS host name (INVALID_ARGUMENT)",
    );
    expect(clock.pendingTimers).toBe(0);
  });
});

describe("NodeAgent and the interval the registry tells", () => {
  /** An agent whose registry is up and has told it `intervalMs`; time stands just after its second beat. */
  async function beating(options: { random?: () => number; intervalMs?: number } = {}): Promise<{ clock: FakeClock; registry: FakeRegistry }> {
    const { clock, registry } = await startAgent({ up: true, ...(options.random === undefined ? {} : { random: options.random }) });
    if (options.intervalMs !== undefined) registry.intervalMs = options.intervalMs;
    await advance(clock, 1000, 10);
    return { clock, registry };
  }

  /** Ends the stream and takes the registry down; returns the waits before each of the next `count` attempts. */
  async function gapsAfterDrop(clock: FakeClock, registry: FakeRegistry, count: number, retryAfterMs?: number): Promise<number[]> {
    const droppedAt = clock.now();
    registry.up = false;
    registry.endStreams(retryAfterMs === undefined ? grpc.status.UNAVAILABLE : grpc.status.RESOURCE_EXHAUSTED, retryAfterMs);
    await untilNextConnect(clock, registry);
    const first = (registry.connectedAt.at(-1) as number) - droppedAt;
    return [first, ...(await nextGaps(clock, registry, count - 1))];
  }

  it("never waits longer than the told interval to reconnect, however many attempts failed", async () => {
    const { clock, registry } = await beating({ random: draws(0.999) });

    const gaps = await gapsAfterDrop(clock, registry, 12);

    // The top of each window: 0.5 s, then the 1 s interval the registry told, where the window would have
    // doubled on to 30 s.
    expect(gaps).toEqual([499, ...new Array<number>(11).fill(999)]);
  });

  it("caps the window by the interval of the last ack, not only by the one Register told", async () => {
    const { clock, registry } = await beating({ random: draws(0.999) });
    registry.intervalMs = 300;
    await advance(clock, 1000, 10); // acks telling 300 ms

    const gaps = await gapsAfterDrop(clock, registry, 6);

    expect(Math.max(...gaps)).toBe(299);
  });

  it("waits a refused Register's retry-after hint plus jitter, instead of its backoff", async () => {
    const rejectWith = new RpcFailure(grpc.status.RESOURCE_EXHAUSTED, "too many registrations; retry in 5000 ms", 5000);
    const { clock, registry } = await startAgent({ random: draws(0.5), rejectWith });

    const gaps = await nextGaps(clock, registry, 5);

    // 5 s, plus half of min(5 s, the window): the window doubles from 0.5 s as after any failure.
    expect(gaps).toEqual([5250, 5500, 6000, 7000, 7500]);
  });

  it("waits a retry-after hint that ends a heartbeat stream, plus jitter, instead of its backoff", async () => {
    const { clock, registry } = await beating({ random: draws(0.5) });

    const gaps = await gapsAfterDrop(clock, registry, 2, 3000);

    // The hint, plus half the first window (0.5 s); then, the stream's hint spent, the backoff again.
    expect(gaps).toEqual([3250, 500]);
  });

  it("beats at a shorter interval an ack tells from the last beat, not after one more beat on the old interval", async () => {
    const { clock, registry } = await beating();
    await advance(clock, 1000, 10);
    registry.intervalMs = 300;

    await advance(clock, 2000, 10);

    // Beats at 0, 1, 2 and 3 s; the ack of the last tells 300 ms, and the next beat is 300 ms after it.
    expect(gapsBetween(registry.beatsAt)).toEqual([1000, 1000, 1000, 300, 300, 300]);
  });

  it("stretches the next beat to a longer interval an ack tells", async () => {
    const { clock, registry } = await beating();
    await advance(clock, 1000, 10);
    registry.intervalMs = 2500;

    await advance(clock, 6000, 10);

    expect(gapsBetween(registry.beatsAt)).toEqual([1000, 1000, 1000, 2500, 2500]);
  });

  it("beats at once when a shorter interval, told by a late ack, has already passed since the last beat", async () => {
    const { clock, registry } = await beating();
    registry.ackDelayMs = 200;
    await advance(clock, 1000, 10);
    registry.intervalMs = 100;

    await advance(clock, 1400, 10);

    // The beat at 3 s is acked at 3.2 s, telling 100 ms: already past, so a beat at once, then one each 100 ms.
    expect(registry.beatsAt.slice(0, 6)).toEqual([0, 1000, 2000, 3000, 3200, 3300]);
  });
});

/** The time from each entry to the next. */
function gapsBetween(times: readonly number[]): number[] {
  return times.slice(1).map((time, index) => time - (times[index] as number));
}

describe("the node's inventory", () => {
  it("goes with Register, then only in beats after it changed: a model loaded at once, utilisation alone once per inventory interval", async () => {
    let collected = anInventory();
    const { clock, registry } = await startAgent({ up: true, inventory: () => collected, inventoryIntervalMs: 5000 });
    const withInventory = (): number[] => registry.beats.flatMap((beat, i) => (beat.inventory === undefined ? [] : [i]));
    expect(registry.registerInventories).toEqual([true]);
    const afterFirst = withInventory().length; // the first beat of a stream states everything

    await advance(clock, 3000, 100);
    expect(withInventory()).toHaveLength(afterFirst);

    collected = { ...collected, gpus: collected.gpus.map((gpu) => ({ ...gpu, utilizationPercent: 99 })) };
    await advance(clock, 1000, 100);
    expect(withInventory()).toHaveLength(afterFirst);
    await advance(clock, 2000, 100);
    expect(withInventory()).toHaveLength(afterFirst + 1);

    collected = { ...collected, models: collected.models.map((model) => ({ ...model, loaded: true })) };
    await advance(clock, 1000, 100);
    expect(withInventory()).toHaveLength(afterFirst + 2);
    const last = registry.beats[withInventory().at(-1) as number];
    expect(last?.inventory?.models?.every((model) => model.loaded === true)).toBe(true);
  });
});
