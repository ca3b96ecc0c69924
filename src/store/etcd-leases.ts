// Liveness across replicas on etcd's lessor (the LivenessPeers port). The replica holding an agent's stream
// claims it: a lease of ceil(timeout) seconds (etcd raises anything below 2 s to 2 s) with
// `<prefix>leases/<id>` attached, naming this replica, kept alive on each beat over one LeaseKeepAlive
// stream for all agents. Every replica hears the lease keys through the store's watch: a key put by another
// replica means the agent is judged there; a key deleted (the lease expired, or was revoked on leaving) means
// the claim lapsed. etcd extends leases across its leader changes and while it is down nothing expires, so
// an etcd outage lapses no claim. But a stopped (not restarted) etcd revokes on waking up leases whose time
// passed while it slept, before their holders' keep-alives get through: so a pulse (a cheap serializable
// count, twice a second) tells whether etcd has been answering, and a lapse heard while it has not is acted
// on only if no replica claims the agent again within a grace (its holder does at its next beat). Failures
// are logged and retried by the next beat.

import { randomUUID } from "node:crypto";
import type { Log } from "../common/log.js";
import type { AgentId } from "../registry/agent-id.js";
import type { LivenessPeers, PeerListener } from "../registry/liveness-peers.js";
import type { LeaseKeepAliveRequest, LeaseKeepAliveResponse } from "../../gen/etcd/etcdserverpb/rpc_pb.js";
import { create } from "@bufbuild/protobuf";
import { LeaseKeepAliveRequestSchema } from "../../gen/etcd/etcdserverpb/rpc_pb.js";
import type { Bidi, EtcdClient } from "./etcd-client.js";
import { type EtcdKeys, bytes, rangeEnd } from "./etcd-keys.js";

/** etcd's smallest lease (ceil(1.5 × its 1 s election timeout)); a shorter request is raised to it anyway. */
const MIN_TTL_SECONDS = 2;
/** How often the pulse asks etcd; an answer slower than SLOW_MS, or none, is trouble. */
const PULSE_MS = 500;
const SLOW_MS = 1000;
/** How long after trouble a lapse waits for a new claim before it counts. */
const TROUBLE_MS = 5000;
const LAPSE_GRACE_MS = 1000;

interface Claim {
  lease: bigint | undefined;
  /** A grant (or the put after it) is under way. */
  granting: boolean;
}

export class EtcdLeases implements LivenessPeers {
  /** This process, as lease keys name it. */
  readonly replica = randomUUID();
  /** Who claims each agent, by the lease keys. */
  private readonly owners = new Map<AgentId, string>();
  /** Claims this replica holds. */
  private readonly mine = new Map<AgentId, Claim>();
  private readonly listeners = new Set<PeerListener>();
  private keepAlive: Bidi<LeaseKeepAliveRequest, LeaseKeepAliveResponse> | undefined;
  private closed = false;
  private pulseTimer: NodeJS.Timeout | undefined;
  private pulseSentAt: number | undefined;
  private troubledUntil = 0;
  private readonly graceTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: EtcdKeys,
    private readonly log: Log,
  ) {}

  beat(id: AgentId, timeoutMs: number): void {
    if (this.closed) return;
    const claim = this.mine.get(id);
    if (claim?.lease !== undefined && this.owners.get(id) === this.replica) {
      this.stream().write(create(LeaseKeepAliveRequestSchema, { ID: claim.lease }));
      return;
    }
    if (claim?.granting === true) return;
    void this.claim(id, Math.max(MIN_TTL_SECONDS, Math.ceil(timeoutMs / 1000)));
  }

  release(id: AgentId): void {
    const claim = this.mine.get(id);
    if (claim === undefined) return;
    this.mine.delete(id);
    if (claim.lease !== undefined) this.revoke(id, claim.lease);
  }

  follow(listener: PeerListener): () => void {
    this.listeners.add(listener);
    for (const [id, owner] of this.owners) if (owner !== this.replica) listener.claimed(id, false);
    return () => this.listeners.delete(listener);
  }

  /** A lease key as loaded or watched: `owner` is the replica it names, undefined once the key is deleted. */
  changed(id: AgentId, owner: string | undefined): void {
    if (owner === undefined) {
      this.owners.delete(id);
      this.mine.delete(id);
      this.lapse(id);
      return;
    }
    this.owners.set(id, owner);
    const here = owner === this.replica;
    if (!here) {
      // Another replica took the agent over: this one's lease for it only needs to go.
      const claim = this.mine.get(id);
      this.mine.delete(id);
      if (claim?.lease !== undefined) this.revoke(id, claim.lease);
    }
    for (const listener of this.listeners) listener.claimed(id, here);
  }

  /** Starts the pulse. */
  start(): void {
    if (this.pulseTimer === undefined && !this.closed) this.pulse();
  }

  /** etcd failed a call or a stream of this replica: lapses heard soon after wait for a new claim. */
  trouble(): void {
    this.troubledUntil = performance.now() + TROUBLE_MS;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.pulseTimer);
    for (const timer of this.graceTimers) clearTimeout(timer);
    this.graceTimers.clear();
    this.keepAlive?.end();
    this.keepAlive = undefined;
  }

  private get troubled(): boolean {
    const now = performance.now();
    return now < this.troubledUntil || (this.pulseSentAt !== undefined && now - this.pulseSentAt > SLOW_MS);
  }

  /** A claim lapsed: told at once while etcd is well, after a grace without a new claim when it was not. */
  private lapse(id: AgentId): void {
    if (this.closed) return;
    if (!this.troubled) {
      for (const listener of this.listeners) listener.lapsed(id);
      return;
    }
    const timer = setTimeout(() => {
      this.graceTimers.delete(timer);
      if (!this.owners.has(id)) this.lapse(id);
    }, LAPSE_GRACE_MS);
    this.graceTimers.add(timer);
  }

  private pulse(): void {
    const sentAt = performance.now();
    this.pulseSentAt = sentAt;
    this.client
      .range({ key: this.keys.leases, rangeEnd: rangeEnd(this.keys.leases), countOnly: true, serializable: true })
      .then(
        () => {
          if (performance.now() - sentAt > SLOW_MS) this.trouble();
        },
        () => this.trouble(),
      )
      .finally(() => {
        this.pulseSentAt = undefined;
        if (this.closed) return;
        this.pulseTimer = setTimeout(() => this.pulse(), PULSE_MS);
        this.pulseTimer.unref();
      });
  }

  private async claim(id: AgentId, ttlSeconds: number): Promise<void> {
    const claim: Claim = { lease: undefined, granting: true };
    this.mine.set(id, claim);
    try {
      const granted = await this.client.leaseGrant(ttlSeconds);
      if (granted.error !== "") throw new Error(granted.error);
      if (this.mine.get(id) !== claim) {
        this.revoke(id, granted.ID);
        return;
      }
      claim.lease = granted.ID;
      await this.client.txn({
        success: [{ request: { case: "requestPut", value: { key: this.keys.lease(id), value: bytes(this.replica), lease: granted.ID } } }],
      });
      // Ours from now, before the watch says so: the next beat keeps this lease alive instead of granting another.
      if (this.mine.get(id) === claim) this.owners.set(id, this.replica);
    } catch (error) {
      if (this.mine.get(id) === claim) this.mine.delete(id);
      this.log.debug({ err: error, agentId: id }, "agent's lease not claimed yet; the next beat tries again");
    } finally {
      claim.granting = false;
    }
  }

  private revoke(id: AgentId, lease: bigint): void {
    this.client.leaseRevoke(lease).catch((error: unknown) => this.log.debug({ err: error, agentId: id }, "lease not revoked; it expires by itself"));
  }

  /** The one keep-alive stream, opened again when it broke. A lease etcd no longer has (TTL 0) is claimed anew. */
  private stream(): Bidi<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
    if (this.keepAlive !== undefined) return this.keepAlive;
    const stream = this.client.leaseKeepAlive();
    this.keepAlive = stream;
    const drop = (): void => {
      if (this.keepAlive === stream) this.keepAlive = undefined;
    };
    stream.on("data", (response: LeaseKeepAliveResponse) => {
      if (response.TTL > 0n) return;
      for (const [id, claim] of this.mine) if (claim.lease === response.ID) this.mine.delete(id);
    });
    stream.on("error", (error: Error) => {
      drop();
      this.log.debug({ err: error }, "etcd lease keep-alive stream broke; opened again on the next beat");
    });
    stream.on("end", drop);
    return stream;
  }
}
