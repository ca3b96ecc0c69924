// A node whose connection drops again and again, coming back each time within the timeout: it stays ONLINE,
// and a watcher sees each drop and each reconnect as one UPDATED event (stream_connected false, then true),
// never a status change. The server runs on fake time, so the node can stay away for almost the whole
// timeout, and the flaps add up to many timeouts, without the test waiting for any of it.

import { afterEach, describe, expect, it } from "vitest";
import { AgentStatus, type WatchAgentsResponse, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { type RegistryClient, type WatchStream, grpcClient } from "../support/clients.js";
import { FakeClock } from "../support/fake-clock.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const INTERVAL_MS = 30_000;
const TIMEOUT_MS = 60_000;
/** How long the node stays away after each drop: a second inside the timeout. */
const DOWN_MS = TIMEOUT_MS - 1000;
const BEATS_PER_STREAM = 3;
const FLAPS = 8;
const ID = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";

let server: TestServer | undefined;
const clients: RegistryClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server?.dispose();
  server = undefined;
});

/** What the agent looks like in a watch event, as far as flapping can change it. */
interface Seen {
  readonly type: WatchEventType;
  readonly status: AgentStatus | undefined;
  readonly draining: boolean | undefined;
  readonly streamConnected: boolean | undefined;
}

const seen = (event: WatchAgentsResponse): Seen => ({
  type: event.type,
  status: event.agent?.status,
  draining: event.agent?.draining,
  streamConnected: event.agent?.streamConnected,
});

/** The watch's next event; fails, naming what was seen so far, if none comes within 5 s. */
async function nextEvent(watch: WatchStream, sofar: readonly Seen[]): Promise<WatchAgentsResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no watch event within 5 s; seen so far: ${JSON.stringify(sofar)}`)), 5000);
  });
  try {
    return await Promise.race([watch.recv(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Flapped {
  /** The status in each ack, of every stream. */
  readonly acks: AgentStatus[];
  /** Every watch event about the node, from the snapshot on. */
  readonly events: Seen[];
  /** The node as GetAgent shows it after the last drop, a second before its timeout. */
  readonly afterwards: { status: AgentStatus | undefined; streamConnected: boolean | undefined };
}

/**
 * Registers the node and watches it; then FLAPS times: a new connection, a stream of BEATS_PER_STREAM beats
 * a heartbeat interval apart, the stream cut without a goodbye, and DOWN_MS of fake time without a beat.
 * Each step waits for the watch event it causes (the server commits a stream change before showing it).
 */
async function flap(): Promise<Flapped> {
  const clock = new FakeClock();
  const running = await startTestServer({ heartbeatIntervalMs: INTERVAL_MS, agentTimeoutMs: TIMEOUT_MS }, { clock });
  server = running;
  const admin = grpcClient(running.grpcAddress);
  clients.push(admin);
  await admin.register({ agentId: ID, hostname: "gpu-flappy" });
  const watch = admin.watch();
  const events: Seen[] = [];
  const record = async (): Promise<void> => {
    events.push(seen(await nextEvent(watch, events)));
  };
  await record(); // the snapshot
  const acks: AgentStatus[] = [];

  for (let flap = 0; flap < FLAPS; flap++) {
    // Each flap a new connection, as after a network drop.
    const node = grpcClient(running.grpcAddress);
    clients.push(node);
    const beat = node.heartbeat();
    for (let seq = 1n; seq <= BigInt(BEATS_PER_STREAM); seq++) {
      if (seq > 1n) clock.advance(INTERVAL_MS);
      beat.send(seq === 1n ? { agentId: ID, seq } : { seq });
      acks.push((await beat.recv()).status);
    }
    await record(); // the stream is up
    beat.cancel(); // the stream drops without a goodbye (no leaving)
    await beat.closed;
    node.close();
    await record(); // the stream is gone
    clock.advance(DOWN_MS);
  }

  const { agent } = await admin.getAgent(ID);
  // Whatever else the server had to say about the node comes before a later agent's ADDED.
  const marker = (await admin.register({ hostname: "gpu-marker" })).agent?.id;
  for (let event = await nextEvent(watch, events); event.agent?.id !== marker; event = await nextEvent(watch, events)) {
    events.push(seen(event));
  }
  watch.cancel();
  return { acks, events, afterwards: { status: agent?.status, streamConnected: agent?.streamConnected } };
}

describe("a node whose connection flaps", () => {
  it(`stays ONLINE through ${FLAPS} drops, each followed by ${DOWN_MS / 1000} s without a beat`, async () => {
    const { acks, events, afterwards } = await flap();

    expect(acks).toEqual(new Array<AgentStatus>(FLAPS * BEATS_PER_STREAM).fill(AgentStatus.ONLINE));
    expect(events.filter((event) => event.type === WatchEventType.STATUS_CHANGED || event.status !== AgentStatus.ONLINE)).toEqual([]);
    expect(afterwards).toEqual({ status: AgentStatus.ONLINE, streamConnected: false });
  });

  it("shows a watcher each reconnect and each drop as one UPDATED event, stream_connected true then false", async () => {
    const { events } = await flap();

    const online = { status: AgentStatus.ONLINE, draining: false };
    const oneFlap: Seen[] = [
      { type: WatchEventType.UPDATED, ...online, streamConnected: true },
      { type: WatchEventType.UPDATED, ...online, streamConnected: false },
    ];
    expect(events).toEqual([
      { type: WatchEventType.ADDED, ...online, streamConnected: false },
      ...Array.from({ length: FLAPS }, () => oneFlap).flat(),
    ]);
  });
});
