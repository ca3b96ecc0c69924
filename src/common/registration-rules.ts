// What a node may register as, shared by the server (which refuses what breaks a rule) and by the node
// daemon and its configuration (which check their own values before sending them). Each check says what
// is wrong as a phrase, or undefined when nothing is; each side words its own refusal around it.

import { isIP } from "node:net";
import { validate } from "uuid";

export const DEFAULT_OLLAMA_PORT = 11434;
export const MAX_HOSTNAME_LENGTH = 253;
export const MAX_VERSION_LENGTH = 128;
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_LENGTH = 63;
export const MAX_LABEL_VALUE_LENGTH = 255;

const NIL_UUID = "00000000-0000-0000-0000-000000000000";
const MAX_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff";
const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;
const LABEL_KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
// Printable, and free of the characters the label selector syntax uses. A lone UTF-16 surrogate (\p{Cs}:
// JSON's "\ud800" decodes to one) is no character at all, and UTF-8 (the file, protobuf) cannot carry it.
// U+FFFD is what a JSON body's bytes that are not UTF-8 decode to (connect-node decodes leniently): taking
// it would store a mangled value as if the node had sent it.
const LABEL_VALUE = /^[^\s,=\p{Cc}\p{Cs}\uFFFD]*$/u;
const PRINTABLE = /^[^\p{Cc}\p{Cs}\uFFFD]*$/u;
const NOT_UTF8 = " (U+FFFD: the request held bytes that are not UTF-8)";

/** Whether `text` is a usable agent id: a UUID (any version, any case) other than the nil and max UUIDs. */
export function isAgentId(text: string): boolean {
  const lower = text.toLowerCase();
  return validate(lower) && lower !== NIL_UUID && lower !== MAX_UUID;
}

export function hostnameProblem(hostname: string): string | undefined {
  if (hostname === "") return "is required";
  if (hostname.length > MAX_HOSTNAME_LENGTH) return `must be at most ${MAX_HOSTNAME_LENGTH} characters, got ${hostname.length}`;
  const labels = hostname.endsWith(".") ? hostname.slice(0, -1).split(".") : hostname.split(".");
  if (labels.every((label) => HOSTNAME_LABEL.test(label))) return undefined;
  return `must be a DNS host name (letters, digits, '-', '_' in dot-separated parts of 1 to 63 characters), got ${quote(hostname)}`;
}

export function ollamaVersionProblem(version: string): string | undefined {
  if (version.length <= MAX_VERSION_LENGTH && PRINTABLE.test(version)) return undefined;
  return `must be at most ${MAX_VERSION_LENGTH} printable characters, got ${quote(version)}${version.includes("\uFFFD") ? NOT_UTF8 : ""}`;
}

export function labelsProblem(labels: Readonly<Record<string, string>>): string | undefined {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) return `at most ${MAX_LABELS} labels are allowed, got ${entries.length}`;
  for (const [key, value] of entries) {
    if (key.length > MAX_LABEL_KEY_LENGTH || !LABEL_KEY.test(key)) {
      return `key ${quote(key)} must be 1 to ${MAX_LABEL_KEY_LENGTH} letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit`;
    }
    if (value.length > MAX_LABEL_VALUE_LENGTH || !LABEL_VALUE.test(value)) {
      return `value of ${quote(key)} must be at most ${MAX_LABEL_VALUE_LENGTH} printable characters without spaces, ',' or '='${value.includes("\uFFFD") ? NOT_UTF8 : ""}`;
    }
  }
  return undefined;
}

/** An IPv4-mapped IPv6 address (::ffff:10.0.0.7) as plain IPv4; anything else as it is. */
export function unmapIPv4(address: string): string {
  return address.toLowerCase().startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** `text` quoted for a message, cut at 80 characters. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}
