// The etcd store's key layout under its prefix (default /agent-registry/): `<prefix>agents/<id>` holds an
// agent's record as JSON in the prototype's shape (agents-file-format.ts, plus the stream-held flags every
// replica shows), and `<prefix>leases/<id>` names the replica that claims the agent, attached to that
// replica's lease for it. Keys and values are UTF-8; a range is [start, end) as etcd takes it.

import type { AgentId } from "../registry/agent-id.js";
import type { AgentRecord } from "../registry/agent.js";
import { decodeAgents, encodeAgent } from "./agents-file-format.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class EtcdKeys {
  readonly agents: Uint8Array;
  readonly leases: Uint8Array;

  constructor(readonly prefix: string) {
    this.agents = encoder.encode(`${prefix}agents/`);
    this.leases = encoder.encode(`${prefix}leases/`);
  }

  agent(id: AgentId): Uint8Array {
    return encoder.encode(`${this.prefix}agents/${id}`);
  }

  lease(id: AgentId): Uint8Array {
    return encoder.encode(`${this.prefix}leases/${id}`);
  }

  /** The agent id of a key under `agents/` or `leases/`, and which; undefined for any other key. */
  parse(key: Uint8Array): { kind: "agent" | "lease"; id: AgentId } | undefined {
    const text = decoder.decode(key);
    for (const kind of ["agent", "lease"] as const) {
      const start = `${this.prefix}${kind}s/`;
      if (text.startsWith(start)) return { kind, id: text.slice(start.length) as AgentId };
    }
    return undefined;
  }
}

/** The end of the range of every key starting with `prefix` (etcd's "prefix + 1"). */
export function rangeEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.slice(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

export function encodeRecord(record: AgentRecord): Uint8Array {
  const extra = { stream_connected: record.streamConnected, liveness_held: record.livenessHeld };
  return encoder.encode(encodeAgent({ record, extra }));
}

/** A record from its value; throws an Error naming the key and field at fault. */
export function decodeRecord(key: Uint8Array, value: Uint8Array): AgentRecord {
  const where = decoder.decode(key);
  const [decoded] = decodeAgents(`[${decoder.decode(value)}]`);
  if (decoded === undefined) throw new Error(`${where} holds no agent record`);
  const { extra } = decoded;
  return { ...decoded.record, streamConnected: extra["stream_connected"] === true, livenessHeld: extra["liveness_held"] === true };
}

export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function bytes(value: string): Uint8Array {
  return encoder.encode(value);
}
