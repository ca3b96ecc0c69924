// The liveness peers port: what a store shared by several replicas tells the registry about liveness beyond
// this replica's own streams. The replica holding an agent's stream claims it (a lease kept alive as beats
// arrive) and judges its deadline exactly; every other replica learns the agent is judged elsewhere, and
// hears when a claim lapsed with no replica keeping it alive (its holder died, or stopped keeping it), which
// is the fallback OFFLINE of an agent whose replica is gone. A single-process store has no peers.

import type { AgentId } from "./agent-id.js";

export interface PeerListener {
  /** A replica claimed the agent: this one (`here`), or another, which judges it from now on. */
  claimed(id: AgentId, here: boolean): void;
  /** The agent's claim lapsed: nobody kept it alive for its timeout. */
  lapsed(id: AgentId): void;
}

export interface LivenessPeers {
  /** The agent beat on a stream this replica holds: claim it, or keep this replica's claim alive. */
  beat(id: AgentId, timeoutMs: number): void;
  /** The agent is OFFLINE or gone: drop this replica's claim at once (others then need not wait it out). */
  release(id: AgentId): void;
  /** Tells `listener` of every claim held by another replica now, then of each change. Returns the unsubscribe. */
  follow(listener: PeerListener): () => void;
}
