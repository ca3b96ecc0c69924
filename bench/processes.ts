// Every process a benchmark run starts: each in its own process group (so a kill reaches whatever it
// started too), pinned to one core with taskset when there are two or more, with its output kept for
// error messages. killAll() ends every group that is still alive; run.ts calls it in a finally block and
// on SIGINT/SIGTERM, so nothing outlives the run.

import { type ChildProcess, type StdioOptions, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus } from "node:os";

/** Cores: the load generator (and this orchestrator) on 0, the server under test on 1. */
export const GENERATOR_CORE = 0;
export const SERVER_CORE = 1;

const TASKSET = ["/usr/bin/taskset", "/bin/taskset"].find((path) => existsSync(path));
export const PINNING = TASKSET !== undefined && cpus().length >= 2;

/**
 * Node flags for a Node process pinned to one core: V8's concurrent marking off, as `agent-registry serve`
 * turns it off itself on one CPU (src/cli/one-cpu-gc.ts), so the load generator and the echoes run the way
 * the server does (with it on, four marking threads take the pinned core from the event loop for a few
 * hundred ms at each major GC).
 */
export const PINNED_NODE_FLAGS: readonly string[] = PINNING ? ["--no-concurrent-marking"] : [];

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  readonly exited: Promise<Exit>;
  /** Everything it wrote so far (the last 64 KB of each stream). */
  output(): string;
  /** SIGTERM, then SIGKILL to the whole group after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<Exit>;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Pin to this core (when pinning is available). */
  readonly core?: number;
  /** Open Node's IPC channel (the child must be a Node script). */
  readonly ipc?: boolean;
  readonly cwd?: string;
}

const KEEP = 64 * 1024;

export class ProcessGroup {
  private readonly children = new Set<Child>();

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Child {
    const pinned = PINNING && options.core !== undefined;
    const file = pinned ? (TASKSET as string) : command;
    const argv = pinned ? ["-c", String(options.core), command, ...args] : [...args];
    const stdio: StdioOptions = options.ipc === true ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"];
    // detached: its own process group, so kill(-pid) ends it and anything it started.
    // IPC by structured clone, not JSON: a window with no acks has NaN percentiles, which JSON turns into null.
    const child = spawn(file, argv, { env: options.env ?? process.env, stdio, detached: true, cwd: options.cwd, serialization: "advanced" });
    if (child.pid === undefined) throw new Error(`cannot start ${name} (${command})`);
    let out = "";
    const keep = (chunk: Buffer): void => {
      out = (out + chunk.toString()).slice(-KEEP);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const exited = new Promise<Exit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const pid = child.pid;
    let gone = false;
    void exited.then(() => (gone = true));
    const handle: Child = {
      name,
      pid,
      process: child,
      exited,
      output: () => out,
      stop: async (graceMs = 5000) => {
        if (!gone) signalGroup(pid, "SIGTERM");
        const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
        const exit = await exited;
        clearTimeout(timer);
        // The leader is gone; make sure nothing it started lingers in its group.
        signalGroup(pid, "SIGKILL");
        this.children.delete(handle);
        return exit;
      },
    };
    this.children.add(handle);
    return handle;
  }

  /** Ends every group still alive, at once (SIGKILL). Safe to call from a signal handler. */
  killAll(): void {
    for (const child of this.children) signalGroup(child.pid, "SIGKILL");
    this.children.clear();
  }

  /** Stops every child politely (SIGTERM, then SIGKILL after the grace). */
  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.all([...this.children].map((child) => child.stop(graceMs)));
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Pins this process (all its threads) to `core`; a no-op without taskset. */
export function pinSelf(core: number): void {
  if (!PINNING) return;
  try {
    execFileSync(TASKSET as string, ["-a", "-p", "-c", String(core), String(process.pid)], { stdio: "ignore" });
  } catch {
    // Pinning is an improvement, not a requirement.
  }
}
