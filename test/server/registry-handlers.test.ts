// The shared handlers with the server's limits, on fake time: streams and watchers admitted and released,
// the first-beat timeout, and nothing left behind by streams that came and went.

import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { HeartbeatRequestSchema, WatchAgentsRequestSchema } from "../../gen/registry/v1/registry_pb.js";
import { silentLog } from "../../src/common/log.js";
import { DEFAULT_LIMITS, type LimitsConfig } from "../../src/config/index.js";
import type { AgentId } from "../../src/registry/agent-id.js";
import { parseRegistration } from "../../src/registry/registration.js";
import type { RegistryError } from "../../src/registry/registry-error.js";
import { Registry } from "../../src/registry/registry.js";
import { Admission } from "../../src/server/admission.js";
import type { HeartbeatOutput } from "../../src/server/heartbeat-call.js";
import { LimitLog } from "../../src/server/limit-log.js";
import { RegistryHandlers } from "../../src/server/registry-handlers.js";
import { Shutdown } from "../../src/server/shutdown.js";
import { FakeClock } from "../support/fake-clock.js";
import { MemoryStore } from "../support/memory-store.js";

const A = "11111111-1111-4111-8111-111111111111" as AgentId;

const opened: Registry[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((registry) => registry.close()));
});

async function handlers(limits: Partial<LimitsConfig> = {}): Promise<{ handlers: RegistryHandlers; clock: FakeClock; shutdown: Shutdown; admission: Admission }> {
  const clock = new FakeClock();
  const registry = await Registry.open({ store: new MemoryStore(), clock, heartbeatIntervalMs: 30_000, agentTimeoutMs: 60_000 });
  opened.push(registry);
  await registry.register(parseRegistration({ agentId: A, hostname: "gpu-a", ipAddress: "10.0.0.1", port: 0, ollamaVersion: "", labels: {} }), undefined);
  const admission = new Admission({ ...DEFAULT_LIMITS, ...limits }, clock, new LimitLog(silentLog, clock));
  const shutdown = new Shutdown();
  return { handlers: new RegistryHandlers(registry, shutdown, { beat() {} }, admission), clock, shutdown, admission };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A Heartbeat stream's output that records how the server ended it (and drops the acks). */
function endsInto(ended: RegistryError[]): HeartbeatOutput {
  return { ack: () => undefined, end: (reason) => ended.push(reason as RegistryError) };
}

const ignored: HeartbeatOutput = { ack: () => undefined, end: () => undefined };

describe("RegistryHandlers with limits", () => {
  it("ends a Heartbeat stream without a first message once the timeout passes, and releases its slot", async () => {
    const { handlers: subject, clock, admission } = await handlers({ firstBeatTimeoutMs: 10_000 });
    const ended: RegistryError[] = [];
    const timers = clock.pendingTimers;
    subject.heartbeat(endsInto(ended));
    expect(admission.openStreams).toBe(1);

    clock.advance(9_999);
    expect(ended).toEqual([]);
    clock.advance(1);

    expect(ended.map((reason) => reason.kind)).toEqual(["deadlineExceeded"]);
    expect(admission.openStreams).toBe(0);
    expect(clock.pendingTimers).toBe(timers);
  });

  it("stops the first-beat timer at the first message", async () => {
    const { handlers: subject, clock } = await handlers({ firstBeatTimeoutMs: 10_000 });
    const ended: RegistryError[] = [];
    const call = subject.heartbeat(endsInto(ended));

    call.receive(create(HeartbeatRequestSchema, { agentId: A, seq: 1n }));
    clock.advance(60_000 - 1);

    expect(ended).toEqual([]);
  });

  it("ends a Heartbeat stream past maxStreams with RESOURCE_EXHAUSTED right after it opens, holding no slot", async () => {
    const { handlers: subject, admission } = await handlers({ maxStreams: 1 });
    subject.heartbeat(ignored);
    const ended: RegistryError[] = [];

    subject.heartbeat(endsInto(ended));
    await settle();

    expect(ended.map((reason) => reason.kind)).toEqual(["resourceExhausted"]);
    expect(admission.openStreams).toBe(1);
  });

  it("leaves nothing on the shutdown signal or in the counts once watches and streams end", async () => {
    const { handlers: subject, shutdown, admission } = await handlers();
    const before = shutdown.subscribers;

    for (let i = 0; i < 100; i++) {
      const watch = subject.watchAgents(create(WatchAgentsRequestSchema, {}));
      watch.watcher.close();
      watch.slot.release();
      subject.heartbeat(ignored).close();
    }

    expect(shutdown.subscribers).toBe(before);
    expect(admission.openStreams).toBe(0);
  });
});
