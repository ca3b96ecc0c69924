// The daemon is back inside the grace: the real server (HEARTBEAT_INTERVAL=0.5, AGENT_TIMEOUT=1.5) is stopped
// with SIGTERM and started again at the same address, round after round, while the real daemon beats; a
// watch on each new server, opened at its start, must never show the node OFFLINE, and the node's stream
// must be back within one interval of the server's return, however long the server was down.

import { rm } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Agent, AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import { type AgentProcess, startAgentProcess } from "../support/agent-process.js";
import { type RegistryClient, type WatchStream, connectClient } from "../support/clients.js";
import { type FakeOllama, freePort, startFakeOllama } from "../support/fake-ollama.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { makeDataDir } from "../support/test-server.js";

const INTERVAL_MS = 500;
const TIMEOUT_MS = 1500;
/** What starting a process and opening a connection may add on this 2-core machine. */
const START_MARGIN_MS = 500;
const ROUNDS = Number(process.env["RESTART_ROUNDS"] ?? 8);
/** The longest pause between the old server's exit and the new one's start in the quick rounds. */
const MAX_QUICK_PAUSE_MS = 1000;
/** A restart that takes longer than the timeout. */
const SLOW_PAUSE_MS = 2500;
/** Three acks, one an interval, with room to spare. */
const HEALTHY_MS = 2 * INTERVAL_MS + 200;
/** How long a round waits for a node that is not back at all before going on (and failing). */
const STEADY_TIMEOUT_MS = 20_000;

let dataDir: string;
let stateDir: string;
let ollama: FakeOllama | undefined;
let server: ServerProcess | undefined;
let daemon: AgentProcess | undefined;
let env: Record<string, string>;

beforeEach(async () => {
  dataDir = await makeDataDir();
  stateDir = await makeDataDir();
  ollama = await startFakeOllama();
  // Fixed ports, so each new server is where the daemon already looks for it.
  const grpcPort = await freePort();
  let httpPort = await freePort();
  while (httpPort === grpcPort) httpPort = await freePort();
  env = {
    HEARTBEAT_INTERVAL: String(INTERVAL_MS / 1000),
    AGENT_TIMEOUT: String(TIMEOUT_MS / 1000),
    REGISTRY_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
    REGISTRY_HTTP_LISTEN: `127.0.0.1:${httpPort}`,
  };
});

afterEach(async () => {
  for (const child of [daemon, server]) {
    if (child === undefined) continue;
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGKILL");
    await child.exited;
  }
  daemon = undefined;
  server = undefined;
  await ollama?.close();
  ollama = undefined;
  await rm(dataDir, { recursive: true, force: true });
  await rm(stateDir, { recursive: true, force: true });
});

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The node as one server showed it, and when (ms after that server's start line). */
interface Sighting {
  readonly atMs: number;
  readonly status: AgentStatus;
  readonly streamConnected: boolean;
}

/** One server's life as the test sees it: a watch opened at its start line, recording the node. */
interface Watched {
  readonly startedAt: number;
  readonly sightings: Sighting[];
  close(): void;
}

const isUp = (seen: Sighting): boolean => seen.status === AgentStatus.ONLINE && seen.streamConnected;

async function startServer(): Promise<{ process: ServerProcess; watched: Watched }> {
  const started = await startServerProcess(dataDir, env);
  const startedAt = Date.now();
  const client: RegistryClient = connectClient(started.httpUrl);
  const watch: WatchStream = client.watch();
  const sightings: Sighting[] = [];
  const see = (agent: Agent | undefined): void => {
    if (agent === undefined) return;
    sightings.push({ atMs: Date.now() - startedAt, status: agent.status, streamConnected: agent.streamConnected });
  };
  void (async () => {
    for (;;) see((await watch.recv()).agent);
  })().catch(() => undefined /* the server stopped, or the test closed the watch */);
  return {
    process: started,
    watched: {
      startedAt,
      sightings,
      close: () => {
        watch.cancel();
        client.close();
      },
    },
  };
}

/** Starts the server and the daemon, and waits until the node's stream is up. */
async function startBoth(): Promise<Watched> {
  const first = await startServer();
  server = first.process;
  daemon = await startAgentProcess(["--hostname", "gpu-restart"], {
    REGISTRY_ADDR: server.grpcAddress,
    OLLAMA_URL: ollama?.url ?? "",
    REGISTRY_DATA_DIR: stateDir,
  });
  await steadyAfter(first.watched, await until(first.watched, isUp, STEADY_TIMEOUT_MS));
  return first.watched;
}

/** Waits until the node's stream, up since `up`, has had three acks: the daemon's backoff has started over. */
async function steadyAfter(watched: Watched, up: Sighting): Promise<void> {
  await wait(watched.startedAt + up.atMs + HEALTHY_MS - Date.now());
}

/** Waits (polling the watch's record) until a sighting matches; fails after `timeoutMs`. */
async function until(watched: Watched, match: (seen: Sighting) => boolean, timeoutMs: number): Promise<Sighting> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const found = watched.sightings.find(match);
    if (found !== undefined) return found;
    if (Date.now() > giveUpAt) throw new Error(`the node never matched within ${timeoutMs} ms; seen: ${JSON.stringify(watched.sightings)}`);
    await wait(20);
  }
}

interface Restarted {
  /** The new server's watch, left open: the next round closes it once that server has stopped. */
  readonly watched: Watched;
  /** Whether the new server ever showed the node OFFLINE. */
  readonly offline: boolean;
  /** When the node's stream was up on the new server, ms after its start line; undefined if never. */
  readonly backAfterMs: number | undefined;
}

/**
 * SIGTERMs the server, waits `pauseMs` after it exited, starts a new one and watches it for 2 × the timeout;
 * then, so that every round starts from a steady node, waits until the node is back and steady.
 */
async function restart(previous: Watched, pauseMs: number): Promise<Restarted> {
  server?.child.kill("SIGTERM");
  await server?.exited;
  previous.close();
  await wait(pauseMs);
  const next = await startServer();
  server = next.process;
  await wait(2 * TIMEOUT_MS);
  const seen = [...next.watched.sightings];
  const back = seen.find(isUp);
  // Not back at all: the round has failed already, and says so.
  const up = await until(next.watched, isUp, STEADY_TIMEOUT_MS).catch(() => undefined);
  if (up !== undefined) await steadyAfter(next.watched, up);
  return { watched: next.watched, offline: seen.some((sighting) => sighting.status === AgentStatus.OFFLINE), backAfterMs: back?.atMs };
}

describe("the node daemon through server restarts (HEARTBEAT_INTERVAL=0.5, AGENT_TIMEOUT=1.5)", () => {
  it(
    `never shows the node OFFLINE, and has its stream back within an interval, through ${ROUNDS} SIGTERM restarts each down 0-1 s`,
    async () => {
      let watched = await startBoth();
      const rounds: Array<{ pauseMs: number; offline: boolean; backAfterMs: number | undefined }> = [];
      for (let round = 0; round < ROUNDS; round++) {
        const pauseMs = Math.floor(Math.random() * MAX_QUICK_PAUSE_MS);
        const { offline, backAfterMs, ...next } = await restart(watched, pauseMs);
        watched = next.watched;
        rounds.push({ pauseMs, offline, backAfterMs });
      }
      watched.close();

      // Every round at once, so a failure shows how often and by how much.
      expect(rounds.filter((round) => round.offline || round.backAfterMs === undefined || round.backAfterMs > INTERVAL_MS + START_MARGIN_MS)).toEqual([]);
    },
    ROUNDS * (MAX_QUICK_PAUSE_MS + 2 * TIMEOUT_MS + 2000) + 2 * STEADY_TIMEOUT_MS,
  );

  it(
    `is back ONLINE with its stream within one interval of a server that was down ${SLOW_PAUSE_MS / 1000} s`,
    async () => {
      const watched = await startBoth();

      const { offline, backAfterMs, ...next } = await restart(watched, SLOW_PAUSE_MS);
      next.watched.close();

      // The new server's grace runs from its own start, so even a long outage shows no OFFLINE.
      expect({ offline, backAfterMs }).toEqual({ offline: false, backAfterMs: expect.any(Number) as unknown });
      expect(backAfterMs).toBeLessThanOrEqual(INTERVAL_MS + START_MARGIN_MS);
    },
    SLOW_PAUSE_MS + 2 * TIMEOUT_MS + 2 * STEADY_TIMEOUT_MS,
  );
});
