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
import { NodeAgent } from "../../src/agent/node-agent.js";
import type { OllamaProbeResult } from "../../src/agent/ollama-probe.js";
import { type HeartbeatCall, type RegistryConnection, RpcFailure, type StreamEnd } from "../../src/agent/registry-connection.js";
import { FakeClock } from "../support/fake-clock.js";
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

/** A registry that is down (Register fails UNAVAILABLE) or up (acks every beat at once). */
class FakeRegistry {
  up = false;
  /** When set, Register fails with it even while up. */
  rejectWith: RpcFailure | undefined;
  readonly connectedAt: number[] = [];
  readonly registered: string[] = [];
  /** The agent_secret of each Register, in order. */
  readonly registerSecrets: string[] = [];
  /** When set, Register returns it as the id's new secret (as the first Register of an id does). */
  issueSecret: string | undefined;
  readonly beats: Beat[] = [];
  private streams: Array<(end: StreamEnd) => void> = [];

  constructor(private readonly clock: FakeClock) {}

  connect = (): RegistryConnection => {
    this.connectedAt.push(this.clock.now());
    return {
      register: (request) => {
        if (this.rejectWith !== undefined) return Promise.reject(this.rejectWith);
        if (!this.up) return Promise.reject(new RpcFailure(grpc.status.UNAVAILABLE, "connect ECONNREFUSED"));
        this.registered.push(String(request.agentId));
        this.registerSecrets.push(request.agentSecret ?? "");
        return Promise.resolve(
          create(RegisterResponseSchema, {
            heartbeatInterval: { seconds: 1n, nanos: 0 },
            agentTimeout: { seconds: 3n, nanos: 0 },
            agentSecret: this.issueSecret ?? "",
          }),
        );
      },
      heartbeat: () => this.stream(),
      close: () => undefined,
    };
  };

  /** Ends every open stream with `code`. */
  endStreams(code: grpc.status): void {
    for (const end of this.streams.splice(0)) end({ code, details: "ended by the test" });
  }

  private stream(): HeartbeatCall {
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
        queueMicrotask(() => listener?.(create(HeartbeatResponseSchema, { seq: beat.seq ?? 0n, heartbeatInterval: { seconds: 1n } })));
      },
      onAck: (fn) => (listener = fn),
      end: () => close({ code: grpc.status.OK, details: "" }),
      cancel: () => close({ code: grpc.status.CANCELLED, details: "Cancelled on client" }),
      ended,
    };
  }
}

async function startAgent(
  options: { random?: number; probe?: () => OllamaProbeResult; up?: boolean } = {},
): Promise<{ agent: NodeAgent; clock: FakeClock; registry: FakeRegistry; log: Logged[]; stateFile: string }> {
  const clock = new FakeClock();
  const stateFile = `${await dirs.make()}/agent-state.json`;
  const registry = new FakeRegistry(clock);
  registry.up = options.up ?? false;
  const log: Logged[] = [];
  const agent = new NodeAgent(
    {
      registryAddress: "127.0.0.1:50051",
      ollamaUrl: "http://127.0.0.1:11434",
      stateFile,
      node: { hostname: "gpu-01", ipAddress: "", port: 11434, labels: {} },
    },
    {
      clock,
      log: memoryLog(log),
      random: () => options.random ?? 0.999,
      connect: registry.connect,
      probe: () => Promise.resolve(options.probe?.() ?? { reachable: true, version: "0.5.7" }),
    },
  );
  agents.push(agent);
  await agent.start();
  await settle();
  return { agent, clock, registry, log, stateFile };
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
    await advance(clock, 20_000, 100);
    expect(registry.connectedAt.length).toBeGreaterThan(3);
    expect(log.filter((line) => line.level === "error")).toEqual([
      expect.objectContaining({
        message: "the registry refuses this node's registration; retrying with backoff",
        fields: expect.objectContaining({ code: "PERMISSION_DENIED" }) as unknown,
      }),
    ]);
  });
});

describe("NodeAgent", () => {
  it("retries a registry that is down after full-jitter delays doubling from 0.5 s to 30 s", async () => {
    const { clock, registry } = await startAgent({ random: 0.999 });

    await advance(clock, 100_000, 50);

    const gaps = registry.connectedAt.slice(1).map((at, i) => at - (registry.connectedAt[i] as number));
    // random 0.999 draws the top of each window: 0.5, 1, 2, 4, 8, 16 s, then the 30 s cap.
    expect(gaps.slice(0, 8).map((gap) => Math.round(gap / 500) * 500)).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  it("draws each delay from the whole window, so a fleet does not come back in the same second", async () => {
    const { clock, registry } = await startAgent({ random: 0 });

    await advance(clock, 10, 1);

    // random 0 draws the bottom of each window: the retries follow at once.
    expect(registry.connectedAt.length).toBeGreaterThan(5);
  });

  it("warns once per outage, not once per retry", async () => {
    const { clock, registry, log } = await startAgent();

    await advance(clock, 20_000, 100);
    registry.up = true;
    await advance(clock, 40_000, 100);

    expect(registry.connectedAt.length).toBeGreaterThan(4);
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

  it("starts over from the first backoff window once a stream has been healthy", async () => {
    const { clock, registry } = await startAgent({ random: 0.999 });
    await advance(clock, 20_000, 100); // four failed attempts: the window is now 8 s
    registry.up = true;
    await advance(clock, 20_000, 100);
    const before = registry.connectedAt.length;

    registry.endStreams(grpc.status.UNAVAILABLE);
    await advance(clock, 600, 10);

    expect(registry.connectedAt.length).toBe(before + 1);
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
