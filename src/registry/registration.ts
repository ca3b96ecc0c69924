// Registration rules: turns what a node sends into a valid Registration, or an invalidArgument error that
// names the field and the rule. Pure; knows nothing of the wire format.

import { isIP } from "node:net";
import { type AgentId, parseAgentId } from "./agent-id.js";
import { invalidArgument } from "./registry-error.js";

export const DEFAULT_OLLAMA_PORT = 11434;
export const MAX_HOSTNAME_LENGTH = 253;
export const MAX_VERSION_LENGTH = 128;
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_LENGTH = 63;
export const MAX_LABEL_VALUE_LENGTH = 255;

/** What a node sends, as plain data. */
export interface RegistrationInput {
  agentId: string;
  hostname: string;
  ipAddress: string;
  port: number;
  ollamaVersion: string;
  labels: Readonly<Record<string, string>>;
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
}

const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;
const LABEL_KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
// Printable, and free of the characters the label selector syntax uses. A lone UTF-16 surrogate (\p{Cs}:
// JSON's "\ud800" decodes to one) is no character at all, and UTF-8 (the file, protobuf) cannot carry it.
const LABEL_VALUE = /^[^\s,=\p{Cc}\p{Cs}]*$/u;
const PRINTABLE = /^[^\p{Cc}\p{Cs}]*$/u;

export function parseRegistration(input: RegistrationInput): Registration {
  return {
    id: input.agentId === "" ? undefined : parseAgentId(input.agentId),
    hostname: parseHostname(input.hostname),
    ipAddress: input.ipAddress === "" ? undefined : parseIpAddress(input.ipAddress),
    port: parsePort(input.port),
    ollamaVersion: parseOllamaVersion(input.ollamaVersion),
    labels: parseLabels(input.labels),
  };
}

function parseHostname(hostname: string): string {
  if (hostname === "") throw invalidArgument("hostname", "is required");
  if (hostname.length > MAX_HOSTNAME_LENGTH) {
    throw invalidArgument("hostname", `must be at most ${MAX_HOSTNAME_LENGTH} characters, got ${hostname.length}`);
  }
  const labels = hostname.endsWith(".") ? hostname.slice(0, -1).split(".") : hostname.split(".");
  if (!labels.every((label) => HOSTNAME_LABEL.test(label))) {
    throw invalidArgument(
      "hostname",
      `must be a DNS host name (letters, digits, '-', '_' in dot-separated parts of 1 to 63 characters), got ${quote(hostname)}`,
    );
  }
  return hostname;
}

/** An IPv4-mapped IPv6 address (::ffff:10.0.0.7) as plain IPv4; anything else as it is. */
export function unmapIPv4(address: string): string {
  return address.toLowerCase().startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Accepts an IPv4 or IPv6 address; an IPv4-mapped IPv6 address becomes plain IPv4. */
export function parseIpAddress(text: string, field = "ip_address"): string {
  const unmapped = unmapIPv4(text);
  if (isIP(unmapped) === 0) {
    throw invalidArgument(field, `must be an IPv4 or IPv6 address such as 10.0.0.7, got ${quote(text)}`);
  }
  return unmapped.toLowerCase();
}

function parsePort(port: number): number {
  if (port === 0) return DEFAULT_OLLAMA_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalidArgument("port", `must be from 1 to 65535 (0 means ${DEFAULT_OLLAMA_PORT}), got ${port}`);
  }
  return port;
}

export function parseOllamaVersion(version: string): string {
  if (version.length > MAX_VERSION_LENGTH || !PRINTABLE.test(version)) {
    throw invalidArgument(
      "ollama_version",
      `must be at most ${MAX_VERSION_LENGTH} printable characters, got ${quote(version)}`,
    );
  }
  return version;
}

function parseLabels(labels: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) {
    throw invalidArgument("labels", `at most ${MAX_LABELS} labels are allowed, got ${entries.length}`);
  }
  for (const [key, value] of entries) {
    if (key.length > MAX_LABEL_KEY_LENGTH || !LABEL_KEY.test(key)) {
      throw invalidArgument(
        "labels",
        `key ${quote(key)} must be 1 to ${MAX_LABEL_KEY_LENGTH} letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit`,
      );
    }
    if (value.length > MAX_LABEL_VALUE_LENGTH || !LABEL_VALUE.test(value)) {
      throw invalidArgument(
        "labels",
        `value of ${quote(key)} must be at most ${MAX_LABEL_VALUE_LENGTH} printable characters without spaces, ',' or '='`,
      );
    }
  }
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}
