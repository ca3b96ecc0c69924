// ListAgents answers built from each agent's cached encoding (registry/encoded-agents.ts), so a read of
// 10 000 agents encodes only the agents that changed since the last read, plus each agent's two liveness
// fields (last_heartbeat, missed_heartbeats), which move with every beat and every interval.
//
// Binary: protobuf lets a message's fields come in any order and a repeated field's elements be written
// one by one, so an agent is its cached fields followed by its liveness fields. The page carries its agents
// as the raw occurrences of field 1 (agents) in `$unknown`, which protobuf-es writes out as they are: on
// the wire it is the same ListAgentsResponse. JSON: an object's keys may come in any order too, so an
// agent is its cached members followed by the two liveness members.

import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { AgentSchema, type ListAgentsResponse, ListAgentsResponseSchema } from "../../gen/registry/v1/registry_pb.js";
import type { AgentRecord } from "../registry/agent.js";
import type { ListQuery } from "../registry/agent-query.js";
import type { EncodedAgents } from "../registry/encoded-agents.js";
import type { EncodedView, Registry } from "../registry/registry.js";
import { agentToWire } from "./wire.js";

/** The JSON options of the HTTP listener: unset fields are written with their defaults. */
const JSON_OPTIONS = { alwaysEmitImplicit: true } as const;

const JSON_START = '{"agents":[';
/** The most an agent's liveness members and its comma take: `,"lastHeartbeat":"…Z","missedHeartbeats":4294967295}` and `,`. */
const LIVENESS_JSON_MAX_BYTES = 96;

const AGENTS_FIELD = 1;
const LAST_HEARTBEAT_FIELD = 7;
const MISSED_HEARTBEATS_FIELD = 11;

export class ListEncodings {
  private readonly binary: EncodedAgents<Uint8Array>;
  private readonly json: EncodedAgents<Buffer>;

  constructor(private readonly registry: Registry) {
    this.binary = registry.encodedAgents((record) => toBinary(AgentSchema, recordToWire(record)));
    this.json = registry.encodedAgents(jsonMembers);
  }

  /** The page as a ListAgentsResponse to send in protobuf binary (gRPC, Connect binary). */
  binaryPage(query: ListQuery): ListAgentsResponse {
    const page = this.registry.listEncoded(query, this.binary);
    const response = create(ListAgentsResponseSchema, { nextPageToken: page.nextPageToken });
    response.$unknown = page.agents.map((agent) => ({ no: AGENTS_FIELD, wireType: WireType.LengthDelimited, data: binaryAgent(agent) }));
    return response;
  }

  /**
   * The page as the JSON text (UTF-8) of a ListAgentsResponse, as the HTTP listener writes it (Connect
   * JSON): the cached bytes copied into one buffer, no string of the whole answer made.
   */
  jsonPage(query: ListQuery): Buffer {
    const page = this.registry.listEncoded(query, this.json);
    const end = `],"nextPageToken":${JSON.stringify(page.nextPageToken)}}`;
    let size = JSON_START.length + Buffer.byteLength(end);
    for (const agent of page.agents) size += agent.encoded.length + LIVENESS_JSON_MAX_BYTES;
    const out = Buffer.allocUnsafe(size);
    let at = out.write(JSON_START, 0, "latin1");
    page.agents.forEach((agent, i) => {
      if (i > 0) at += out.write(",", at, "latin1");
      at += agent.encoded.copy(out, at);
      // ASCII only: a timestamp and a number.
      at += out.write(`,"lastHeartbeat":"${timestampJson(agent.lastHeartbeat)}","missedHeartbeats":${agent.missedHeartbeats}}`, at, "latin1");
    });
    at += out.write(end, at, "utf8");
    return out.subarray(0, at);
  }
}

/** The record on the wire without its liveness fields (last_heartbeat unset, missed_heartbeats 0). */
function recordToWire(record: AgentRecord): ReturnType<typeof agentToWire> {
  const wire = agentToWire({ ...record, missedHeartbeats: 0 });
  wire.lastHeartbeat = undefined;
  return wire;
}

/** The record's JSON object (UTF-8) without its liveness members and without the closing brace. */
function jsonMembers(record: AgentRecord): Buffer {
  const members = toJson(AgentSchema, recordToWire(record), JSON_OPTIONS) as Record<string, unknown>;
  delete members.missedHeartbeats;
  return Buffer.from(JSON.stringify(members).slice(0, -1), "utf8");
}

/**
 * One occurrence of field 1: the length, the cached fields, then the liveness fields, written by hand
 * (last_heartbeat = 7, a Timestamp of seconds = 1 and nanos = 2; missed_heartbeats = 11; zeros left out
 * as proto3 does): building and reflecting over a message per agent would cost more than the rest.
 */
function binaryAgent(agent: EncodedView<Uint8Array>): Uint8Array {
  const seconds = Math.floor(agent.lastHeartbeat / 1000);
  const nanos = (agent.lastHeartbeat - seconds * 1000) * 1_000_000;
  const writer = new BinaryWriter().fork().raw(agent.encoded);
  writer.tag(LAST_HEARTBEAT_FIELD, WireType.LengthDelimited).fork();
  if (seconds !== 0) writer.tag(1, WireType.Varint).int64(seconds);
  if (nanos !== 0) writer.tag(2, WireType.Varint).int32(nanos);
  writer.join();
  if (agent.missedHeartbeats !== 0) writer.tag(MISSED_HEARTBEATS_FIELD, WireType.Varint).uint32(agent.missedHeartbeats);
  return writer.join().finish();
}

/** A Timestamp in protobuf JSON: RFC 3339 in UTC, the fraction left out when it is zero (as protobuf-es writes it). */
function timestampJson(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}
