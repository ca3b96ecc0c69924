// ListAgents answers built from each agent's cached encoding (registry/encoded-agents.ts), so a read of
// 10 000 agents encodes only the agents that changed since the last read, plus the two liveness fields
// (last_heartbeat, missed_heartbeats) of those that beat or missed a beat since they were last sent. A page
// is built a slice of agents at a time, with a turn of the event loop between slices: the page is the
// agents of one instant, and a list of the whole fleet holds the beats up no longer than a slice takes.
//
// Binary: protobuf lets a message's fields come in any order and a repeated field's elements be written
// one by one, so an agent is its cached fields followed by its liveness fields. The page carries its agents
// as the raw occurrences of field 1 (agents) in `$unknown`, which protobuf-es writes out as they are: on
// the wire it is the same ListAgentsResponse. JSON: an object's keys may come in any order too, so an
// agent is its cached members followed by the two liveness members.

import { setImmediate } from "node:timers/promises";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { AgentSchema, type ListAgentsResponse, ListAgentsResponseSchema } from "../../gen/registry/v1/registry_pb.js";
import type { AgentRecord } from "../registry/agent.js";
import type { ListQuery } from "../registry/agent-query.js";
import type { EncodedAgents } from "../registry/encoded-agents.js";
import type { Registry } from "../registry/registry.js";
import { HTTP_JSON_OPTIONS, agentToWire } from "./wire.js";

/** Agents encoded to a turn of the event loop: about a millisecond's work when most come from the cache. */
const SLICE = 500;
const AGENTS_FIELD = 1;
const LAST_HEARTBEAT_FIELD = 7;
const MISSED_HEARTBEATS_FIELD = 11;

/**
 * One agent's cached encoding: the fields of its record, and the whole agent as last sent with the liveness
 * facts it had then, reused while those are the same (an agent beats once an interval; reads come more often).
 * Dropped with the record.
 */
interface CachedAgent {
  readonly fields: Uint8Array;
  whole?: { readonly bytes: Uint8Array; readonly lastHeartbeat: number; readonly missedHeartbeats: number };
}

export class ListEncodings {
  private readonly binary: EncodedAgents<CachedAgent>;
  private readonly json: EncodedAgents<CachedAgent>;

  constructor(private readonly registry: Registry) {
    this.binary = registry.encodedAgents((record) => ({ fields: toBinary(AgentSchema, recordToWire(record)) }));
    this.json = registry.encodedAgents((record) => ({ fields: jsonMembers(record) }));
  }

  /** The page as a ListAgentsResponse to send in protobuf binary (gRPC, Connect binary). */
  async binaryPage(query: ListQuery): Promise<ListAgentsResponse> {
    const page = await this.wholeAgents(query, this.binary, binaryAgent);
    const response = create(ListAgentsResponseSchema, { nextPageToken: page.nextPageToken });
    response.$unknown = page.agents.map((data) => ({ no: AGENTS_FIELD, wireType: WireType.LengthDelimited, data }));
    return response;
  }

  /** The page as the JSON text (UTF-8) of a ListAgentsResponse, as the HTTP listener writes it (Connect JSON). */
  async jsonPage(query: ListQuery): Promise<Buffer> {
    const { agents, nextPageToken } = await this.wholeAgents(query, this.json, jsonAgent);
    const end = Buffer.from(`],"nextPageToken":${JSON.stringify(nextPageToken)}}`, "utf8");
    let length = JSON_START.length + Math.max(0, agents.length - 1) + end.length;
    for (const agent of agents) length += agent.length;
    // One copy of each agent into the answer, commas between them.
    const text = Buffer.allocUnsafe(length);
    text.set(JSON_START, 0);
    let at = JSON_START.length;
    agents.forEach((agent, i) => {
      if (i > 0) text[at++] = COMMA;
      text.set(agent, at);
      at += agent.length;
    });
    text.set(end, at);
    return text;
  }

  /** Each agent of the page whole, as `encode` makes it, SLICE agents to a turn of the event loop. */
  private async wholeAgents(query: ListQuery, cache: EncodedAgents<CachedAgent>, encode: Encode): Promise<{ agents: Uint8Array[]; nextPageToken: string }> {
    const page = this.registry.listRecords(query);
    const agents: Uint8Array[] = [];
    const add = (cached: CachedAgent, lastHeartbeat: number, missedHeartbeats: number): void => {
      agents.push(whole(cached, lastHeartbeat, missedHeartbeats, encode));
    };
    for (let from = 0; from < page.agents.length; from += SLICE) {
      if (from > 0) await setImmediate();
      this.registry.forEachEncoded(page.agents, from, Math.min(from + SLICE, page.agents.length), cache, add);
    }
    return { agents, nextPageToken: page.nextPageToken };
  }
}

/** Makes an agent whole from its cached fields and its liveness facts. */
type Encode = (fields: Uint8Array, lastHeartbeat: number, missedHeartbeats: number) => Uint8Array;

const JSON_START = Buffer.from('{"agents":[', "latin1");
const COMMA = 0x2c;

/** The whole agent, from the cache while its liveness facts are the ones it was made with. */
function whole(cached: CachedAgent, lastHeartbeat: number, missedHeartbeats: number, encode: Encode): Uint8Array {
  const last = cached.whole;
  if (last !== undefined && last.lastHeartbeat === lastHeartbeat && last.missedHeartbeats === missedHeartbeats) return last.bytes;
  const bytes = encode(cached.fields, lastHeartbeat, missedHeartbeats);
  cached.whole = { bytes, lastHeartbeat, missedHeartbeats };
  return bytes;
}

/** The agent's JSON object: its record's members, then the liveness members (ASCII: a timestamp and a number). */
function jsonAgent(fields: Uint8Array, lastHeartbeat: number, missedHeartbeats: number): Uint8Array {
  const liveness = `,"lastHeartbeat":"${timestampJson(lastHeartbeat)}","missedHeartbeats":${missedHeartbeats}}`;
  const bytes = Buffer.allocUnsafe(fields.length + liveness.length);
  bytes.set(fields, 0);
  bytes.write(liveness, fields.length, "latin1");
  return bytes;
}

/** The record on the wire without its liveness fields (last_heartbeat unset, missed_heartbeats 0). */
function recordToWire(record: AgentRecord): ReturnType<typeof agentToWire> {
  const wire = agentToWire({ ...record, missedHeartbeats: 0 });
  wire.lastHeartbeat = undefined;
  return wire;
}

/** The record's JSON object (UTF-8) without its liveness members and without the closing brace. */
function jsonMembers(record: AgentRecord): Buffer {
  const members = toJson(AgentSchema, recordToWire(record), HTTP_JSON_OPTIONS) as Record<string, unknown>;
  delete members.missedHeartbeats;
  return Buffer.from(JSON.stringify(members).slice(0, -1), "utf8");
}

/**
 * One occurrence of field 1: the length, the cached fields, then the liveness fields, written by hand
 * (last_heartbeat = 7, a Timestamp of seconds = 1 and nanos = 2; missed_heartbeats = 11; zeros left out
 * as proto3 does): building and reflecting over a message per agent would cost more than the rest.
 */
function binaryAgent(fields: Uint8Array, lastHeartbeat: number, missedHeartbeats: number): Uint8Array {
  const seconds = Math.floor(lastHeartbeat / 1000);
  const nanos = (lastHeartbeat - seconds * 1000) * 1_000_000;
  const writer = new BinaryWriter().fork().raw(fields);
  writer.tag(LAST_HEARTBEAT_FIELD, WireType.LengthDelimited).fork();
  if (seconds !== 0) writer.tag(1, WireType.Varint).int64(seconds);
  if (nanos !== 0) writer.tag(2, WireType.Varint).int32(nanos);
  writer.join();
  if (missedHeartbeats !== 0) writer.tag(MISSED_HEARTBEATS_FIELD, WireType.Varint).uint32(missedHeartbeats);
  return writer.join().finish();
}

/** A Timestamp in protobuf JSON: RFC 3339 in UTC, the fraction left out when it is zero (as protobuf-es writes it). */
function timestampJson(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? `${iso.slice(0, -5)}Z` : iso;
}
