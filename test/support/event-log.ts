// Watches a server's WatchAgents over Connect for a whole test, re-watching after the stream ends (a
// restart), and keeps every event, so a test can say "no agent was ever reported OFFLINE".

import { AgentStatus, type WatchAgentsResponse } from "../../gen/registry/v1/registry_pb.js";
import { connectClient } from "./clients.js";

export class EventLog {
  readonly events: WatchAgentsResponse[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly httpUrl: () => string) {
    this.done = this.run();
  }

  /** Agents ever reported OFFLINE, in a snapshot or an event. */
  offlineIds(): Set<string> {
    return new Set(this.events.filter((event) => event.agent?.status === AgentStatus.OFFLINE).map((event) => event.agent?.id ?? ""));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const client = connectClient(this.httpUrl());
      const watch = client.watch();
      const stop = setInterval(() => {
        if (this.stopped) watch.cancel();
      }, 50);
      try {
        for (;;) this.events.push(await watch.recv());
      } catch {
        // The stream ended (restart, or stop): watch again unless stopped.
      } finally {
        clearInterval(stop);
        client.close();
      }
      if (!this.stopped) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
