// The orchestrator's side of the load generator: starts load-generator.js on its own core with an IPC
// channel, sends one command at a time and waits for its reply (with a time limit).

import { join } from "node:path";
import type { Child, ProcessGroup } from "./processes.js";
import { GENERATOR_CORE, PINNED_NODE_FLAGS } from "./processes.js";
import { BENCH_BUILD } from "./paths.js";
import type { Command, Envelope, FleetReady, FleetSpec, Reply, StormResult, WindowStats } from "./protocol.js";

export class GeneratorHandle {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(reply: Reply): void; reject(error: Error): void }>();

  private constructor(readonly child: Child) {
    child.process.on("message", (envelope: Envelope<Reply>) => {
      const waiter = this.pending.get(envelope.id);
      this.pending.delete(envelope.id);
      waiter?.resolve(envelope.body);
    });
    void child.exited.then((exit) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`the load generator exited (${exit.code ?? exit.signal}): ${child.output().slice(-2000)}`));
      }
      this.pending.clear();
    });
  }

  static start(processes: ProcessGroup): GeneratorHandle {
    // A bigger heap: 10 000 streams and their samples are far below it, but a young generation that is too
    // small makes the generator, not the server, the bottleneck.
    // BENCH_PROFILE_GENERATOR=<dir>: profile the generator itself (node --cpu-prof), to check it is not the limit.
    const profileDir = process.env["BENCH_PROFILE_GENERATOR"];
    const profile = profileDir === undefined || profileDir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
    const args = [...profile, ...PINNED_NODE_FLAGS, "--max-old-space-size=4096", "--max-semi-space-size=64", join(BENCH_BUILD, "load-generator.js")];
    return new GeneratorHandle(processes.spawn("load-generator", process.execPath, args, { core: GENERATOR_CORE, ipc: true }));
  }

  get pid(): number {
    return this.child.pid;
  }

  private call(command: Command, timeoutMs = 60_000): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the load generator did not answer ${command.op} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.ev === "error") reject(new Error(`load generator, ${command.op}: ${reply.message}`));
          else resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      const envelope: Envelope<Command> = { id, body: command };
      this.child.process.send(envelope);
    });
  }

  async fleet(spec: FleetSpec): Promise<FleetReady> {
    const reply = await this.call({ op: "fleet", spec }, 240_000);
    if (reply.ev !== "fleetReady") throw new Error(`unexpected reply ${reply.ev}`);
    return reply.ready;
  }

  async steady(intervalMs: number): Promise<void> {
    await this.call({ op: "steady", intervalMs });
  }

  async closedLoop(window: number): Promise<void> {
    await this.call({ op: "closedLoop", window });
  }

  async mark(): Promise<void> {
    await this.call({ op: "mark" });
  }

  async collect(): Promise<WindowStats> {
    const reply = await this.call({ op: "collect" });
    if (reply.ev !== "window") throw new Error(`unexpected reply ${reply.ev}`);
    return reply.stats;
  }

  /** Silences `count` agents spread evenly over the fleet; their ids. */
  async silence(count: number): Promise<readonly string[]> {
    const reply = await this.call({ op: "silence", count });
    if (reply.ev !== "silenced") throw new Error(`unexpected reply ${reply.ev}`);
    return reply.ids;
  }

  async resume(ids: readonly string[]): Promise<void> {
    await this.call({ op: "resume", ids });
  }

  async lastAcks(ids: readonly string[]): Promise<readonly (number | null)[]> {
    const reply = await this.call({ op: "lastAcks", ids });
    if (reply.ev !== "lastAcks") throw new Error(`unexpected reply ${reply.ev}`);
    return reply.serverTimes;
  }

  async stormPrepare(address: string, callers: number, connections: number): Promise<void> {
    await this.call({ op: "stormPrepare", address, callers, connections }, 120_000);
  }

  async stormRun(total: number): Promise<StormResult> {
    const reply = await this.call({ op: "stormRun", total }, 240_000);
    if (reply.ev !== "storm") throw new Error(`unexpected reply ${reply.ev}`);
    return reply.result;
  }

  /** Asks it to close its streams and exit; kills it if it does not. */
  async stop(): Promise<void> {
    await this.call({ op: "shutdown" }, 5000).catch(() => undefined);
    // Let it exit by itself first (a --cpu-prof profile is written on a clean exit only).
    await Promise.race([this.child.exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    await this.child.stop(3000);
  }
}
