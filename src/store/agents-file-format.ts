// The agents.json format: a bare JSON array in the Rust prototype's shape (snake_case keys, status as
// "Online"/"Offline", RFC 3339 UTC times), with extra keys allowed. Decoding validates everything and
// names the entry and field at fault; unknown keys are kept so a rewrite never drops them. The agent's
// secret is never in the file, only its hash (`secret_hash`, "sha256:<hex>"). `revision` is the store
// revision that last changed the agent (absent in the prototype's files); `inventory` the node's GPUs and
// models (inventory-json.ts; absent in the prototype's files). The stream flag is never written.

import { isAgentId } from "../common/registration-rules.js";
import type { AgentId } from "../registry/agent-id.js";
import type { AgentRecord } from "../registry/agent.js";
import { isSecretHash } from "../registry/agent-secret.js";

import { decodeInventory, encodeInventory } from "./inventory-json.js";
import type { ExtraKeys } from "./store-export.js";

/** Keys this server does not know, kept per agent so they survive a rewrite. */
export type { ExtraKeys };

export interface DecodedAgent {
  readonly record: AgentRecord;
  readonly extra: ExtraKeys;
  /** The revision that last changed the agent; undefined in a file that does not say (the prototype's). */
  readonly revision?: number | undefined;
}

const KNOWN_KEYS = new Set([
  "id",
  "hostname",
  "ip_address",
  "port",
  "ollama_version",
  "status",
  "last_heartbeat",
  "registered_at",
  "labels",
  "draining",
  "secret_hash",
  "revision",
  "inventory",
]);

// RFC 3339 with a zone; the prototype (chrono) writes up to nine fractional digits.
const RFC3339 = /^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
// What this server writes (toISOString): Date.parse reads it as it is.
const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** One agent as its line of the file. */
export function encodeAgent(agent: DecodedAgent): string {
  return lineOf(encodeAgentParts(agent), agent.record.lastHeartbeat);
}

/**
 * One agent's line in the two parts around its last_heartbeat time, which a beat alone changes: a store
 * that keeps the parts writes a beat as `lineOf(parts, at)`, without encoding the agent again.
 */
export interface AgentLineParts {
  readonly head: string;
  readonly tail: string;
}

export function encodeAgentParts({ record, extra, revision }: DecodedAgent): AgentLineParts {
  const head = JSON.stringify({
    ...extra,
    id: record.id,
    hostname: record.hostname,
    ip_address: record.ipAddress,
    port: record.port,
    ollama_version: record.ollamaVersion,
    status: record.status === "online" ? "Online" : "Offline",
  });
  const tail = JSON.stringify({
    registered_at: new Date(record.registeredAt).toISOString(),
    labels: record.labels,
    draining: record.draining,
    ...(record.secretHash === undefined ? {} : { secret_hash: record.secretHash }),
    ...(revision === undefined ? {} : { revision }),
    ...(record.inventory === undefined || record.inventoryUpdatedAt === undefined
      ? {}
      : { inventory: encodeInventory({ inventory: record.inventory, updatedAt: record.inventoryUpdatedAt }) }),
  });
  // Both are objects: the head open at its end, the tail at its start, last_heartbeat (an RFC 3339 string,
  // nothing to escape) between them, as JSON.stringify would have put it.
  return { head: `${head.slice(0, -1)},"last_heartbeat":"`, tail: `",${tail.slice(1)}` };
}

/** The agent's line with its last beat at `lastHeartbeat` (ms). */
export function lineOf(parts: AgentLineParts, lastHeartbeat: number): string {
  return parts.head + new Date(lastHeartbeat).toISOString() + parts.tail;
}

/** The file's text from its lines (encodeAgent), one agent a line. */
export function joinAgentLines(lines: Iterable<string>): string {
  // One agent a line: about half the encoding time of pretty-printing and a quarter fewer bytes, still
  // readable with less or grep (jq for more).
  return `[\n${[...lines].join(",\n")}\n]\n`;
}

export function encodeAgents(agents: Iterable<DecodedAgent>): string {
  const lines: string[] = [];
  for (const agent of agents) lines.push(encodeAgent(agent));
  return joinAgentLines(lines);
}

/** Parses the file's text; throws an Error whose message says what is wrong and where (not which file). */
export function decodeAgents(text: string): DecodedAgent[] {
  if (text.trim() === "") throw new Error("the file is empty (a valid empty registry is `[]`)");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new Error(`expected a JSON array of agents, found ${typeName(parsed)}`);
  const seen = new Set<string>();
  return parsed.map((row: unknown, index) => {
    const agent = decodeAgent(row, `agent #${index + 1}`);
    if (seen.has(agent.record.id)) throw new Error(`agent #${index + 1}: id ${agent.record.id} appears more than once`);
    seen.add(agent.record.id);
    return agent;
  });
}

function decodeAgent(row: unknown, where: string): DecodedAgent {
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    throw new Error(`${where}: expected an object, found ${typeName(row)}`);
  }
  const fields = row as Record<string, unknown>;
  const id = field(fields, "id", where, "string");
  if (!isAgentId(id)) throw new Error(`${where}: "id" must be a UUID, got ${JSON.stringify(id)}`);
  const at = `${where} (id ${id})`;
  const port = field(fields, "port", at, "number");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${at}: "port" must be an integer from 0 to 65535, got ${port}`);
  }
  const status = field(fields, "status", at, "string");
  if (status !== "Online" && status !== "Offline") {
    throw new Error(`${at}: "status" must be "Online" or "Offline", got ${JSON.stringify(status)}`);
  }
  const secretHash = optionalField(fields, "secret_hash", at, "string");
  if (secretHash !== undefined && !isSecretHash(secretHash)) {
    throw new Error(`${at}: "secret_hash" must be "sha256:" and 64 lower-case hex digits, got ${JSON.stringify(secretHash.slice(0, 80))}`);
  }
  const extra = extraKeys(fields);
  const revision = optionalField(fields, "revision", at, "number");
  if (revision !== undefined && !(Number.isSafeInteger(revision) && revision > 0)) {
    throw new Error(`${at}: "revision" must be a positive integer, got ${revision}`);
  }
  let inventory: ReturnType<typeof decodeInventory> | undefined;
  if (fields["inventory"] !== undefined && fields["inventory"] !== null) {
    try {
      inventory = decodeInventory(fields["inventory"]);
    } catch (error) {
      throw new Error(`${at}: ${(error as Error).message}`);
    }
  }
  return {
    record: {
      id: id.toLowerCase() as AgentId,
      hostname: field(fields, "hostname", at, "string"),
      ipAddress: field(fields, "ip_address", at, "string"),
      port,
      ollamaVersion: optionalField(fields, "ollama_version", at, "string") ?? "",
      status: status === "Online" ? "online" : "offline",
      lastHeartbeat: timestamp(fields, "last_heartbeat", at),
      registeredAt: timestamp(fields, "registered_at", at),
      labels: labels(fields, at),
      draining: optionalField(fields, "draining", at, "boolean") ?? false,
      streamConnected: false,
      livenessHeld: false,
      secretHash,
      inventory: inventory?.inventory,
      inventoryUpdatedAt: inventory?.updatedAt,
    },
    extra,
    revision,
  };
}

/** Shared by every agent without keys of its own (nearly all): a load makes no object for them. */
const NO_EXTRA_KEYS: ExtraKeys = Object.freeze({});

function extraKeys(fields: Record<string, unknown>): ExtraKeys {
  let extra: Record<string, unknown> | undefined;
  for (const key in fields) {
    // No prototype: a key named "__proto__" is kept as a key like any other.
    if (!KNOWN_KEYS.has(key)) (extra ??= Object.create(null) as Record<string, unknown>)[key] = fields[key];
  }
  return extra ?? NO_EXTRA_KEYS;
}

type Primitive = { string: string; number: number; boolean: boolean };

function field<T extends keyof Primitive>(
  fields: Record<string, unknown>,
  key: string,
  where: string,
  type: T,
): Primitive[T] {
  const value = optionalField(fields, key, where, type);
  if (value === undefined) throw new Error(`${where}: "${key}" is missing`);
  return value;
}

/** Absent and null both read as undefined (the prototype writes null for an unknown version). */
function optionalField<T extends keyof Primitive>(
  fields: Record<string, unknown>,
  key: string,
  where: string,
  type: T,
): Primitive[T] | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== type) throw new Error(`${where}: "${key}" must be a ${type}, found ${typeName(value)}`);
  return value as Primitive[T];
}

function timestamp(fields: Record<string, unknown>, key: string, where: string): number {
  const text = field(fields, key, where, "string");
  let ms: number;
  if (ISO_MS_UTC.test(text)) ms = Date.parse(text);
  else {
    const match = RFC3339.exec(text);
    // Date.parse takes at most millisecond precision: drop the digits past it.
    ms = match === null ? NaN : Date.parse(`${match[1]}${(match[2] ?? "").slice(0, 4)}${match[3]}`);
  }
  if (Number.isNaN(ms)) {
    throw new Error(`${where}: "${key}" must be an RFC 3339 time such as 2024-05-01T12:00:00Z, got ${JSON.stringify(text)}`);
  }
  return ms;
}

function labels(fields: Record<string, unknown>, where: string): Record<string, string> {
  const value = fields["labels"];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${where}: "labels" must be an object of strings, found ${typeName(value)}`);
  }
  for (const [key, label] of Object.entries(value)) {
    if (typeof label !== "string") throw new Error(`${where}: label "${key}" must be a string, found ${typeName(label)}`);
  }
  return value as Record<string, string>;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value} (${JSON.stringify(value)?.slice(0, 40)})`;
}
