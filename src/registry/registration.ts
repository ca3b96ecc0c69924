// Registration rules: turns what a node sends into a valid Registration, or an invalidArgument error that
// names the field and the rule (the rules themselves are shared with the node daemon: common/
// registration-rules.ts). Pure; knows nothing of the wire format.

import { isIP } from "node:net";
import {
  DEFAULT_OLLAMA_PORT,
  hostnameProblem,
  labelsProblem,
  ollamaVersionProblem,
  quote,
  unmapIPv4,
} from "../common/registration-rules.js";
import { type AgentId, parseAgentId } from "./agent-id.js";
import { type Inventory, parseInventory } from "./inventory.js";
import { invalidArgument } from "./registry-error.js";

/** What a node sends, as plain data. */
export interface RegistrationInput {
  agentId: string;
  hostname: string;
  ipAddress: string;
  port: number;
  ollamaVersion: string;
  labels: Readonly<Record<string, string>>;
  /** Absent: the node reports none. */
  inventory?: Inventory | undefined;
}

export interface Registration {
  /** Absent: the registry makes a new id. */
  readonly id: AgentId | undefined;
  readonly hostname: string;
  /** Absent: the registry uses the caller's address. */
  readonly ipAddress: string | undefined;
  readonly port: number;
  readonly ollamaVersion: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly inventory?: Inventory | undefined;
}

export function parseRegistration(input: RegistrationInput): Registration {
  return {
    id: input.agentId === "" ? undefined : parseAgentId(input.agentId),
    hostname: checked("hostname", input.hostname, hostnameProblem),
    ipAddress: input.ipAddress === "" ? undefined : parseIpAddress(input.ipAddress),
    port: parsePort(input.port),
    ollamaVersion: parseOllamaVersion(input.ollamaVersion),
    labels: sortedLabels(checked("labels", input.labels, labelsProblem)),
    inventory: input.inventory === undefined ? undefined : parseInventory(input.inventory),
  };
}

/** Accepts an IPv4 or IPv6 address; an IPv4-mapped IPv6 address becomes plain IPv4. */
export function parseIpAddress(text: string, field = "ip_address"): string {
  const unmapped = unmapIPv4(text);
  if (isIP(unmapped) === 0) {
    throw invalidArgument(field, `must be an IPv4 or IPv6 address such as 10.0.0.7, got ${quote(text)}`);
  }
  return unmapped.toLowerCase();
}

export function parseOllamaVersion(version: string): string {
  return checked("ollama_version", version, ollamaVersionProblem);
}

function parsePort(port: number): number {
  if (port === 0) return DEFAULT_OLLAMA_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalidArgument("port", `must be from 1 to 65535 (0 means ${DEFAULT_OLLAMA_PORT}), got ${port}`);
  }
  return port;
}

function checked<T>(field: string, value: T, problemOf: (value: T) => string | undefined): T {
  const problem = problemOf(value);
  if (problem !== undefined) throw invalidArgument(field, problem);
  return value;
}

function sortedLabels(labels: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
