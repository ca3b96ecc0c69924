// One parser per kind of value a setting takes (seconds, whole numbers, switches, choices, paths, addresses,
// URLs, tokens, secrets, labels, host names): each turns what was given into a typed value, or throws a ConfigError
// that names the variable or flag and says what it accepts. The settings table picks one for each row.

import { isIP } from "node:net";
import { hostnameProblem, labelsProblem, unmapIPv4 } from "../common/registration-rules.js";
import { ConfigError } from "./config-error.js";
import { type ListenAddress, parseListenAddress } from "./listen-address.js";
import { TOKEN_CHARACTERS } from "./role-token.js";
import type { Given, GivenEntries } from "./setting.js";

export type Parser<T> = (given: Given) => T;

/** One day: far beyond any sane interval, and within what a timer can wait. */
export const MAX_SECONDS = 86_400;

/** Seconds, fractions allowed ("0.2"), as whole milliseconds: at least 1 ms, at most `max` seconds. */
export function seconds(max: number = MAX_SECONDS): Parser<number> {
  return ({ name, value }) => {
    const parsed = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
    // Checked after rounding to whole milliseconds: 0.0001 s would become 0 ms, and the registry divides by
    // the interval.
    const ms = Math.round(parsed * 1000);
    if (!(ms >= 1 && parsed <= max)) {
      throw new ConfigError(
        `${name} must be a number of seconds from 0.001 to ${max} (fractions allowed, e.g. 0.5), got ${JSON.stringify(value)}`,
      );
    }
    return ms;
  };
}

/** Seconds as seconds() takes them, or "0" for off (held as 0 ms). */
export function secondsOrOff(max: number = MAX_SECONDS): Parser<number> {
  const positive = seconds(max);
  return (given) => {
    if (/^0+(\.0+)?$/.test(given.value)) return 0;
    try {
      return positive(given);
    } catch {
      throw new ConfigError(`${given.name} must be 0 (off) or a number of seconds up to ${max} (fractions allowed, e.g. 0.5), got ${JSON.stringify(given.value)}`);
    }
  };
}

/** A share from 0 to just below 1, in decimal ("0.5"); 0 means "off". */
export function share({ name, value }: Given): number {
  const parsed = /^(0|1)?(\.\d+)?$/.test(value) && value !== "" && value !== "." ? Number(value) : NaN;
  if (!(parsed >= 0 && parsed < 1)) {
    throw new ConfigError(`${name} must be a share from 0 (off) to below 1, e.g. 0.5, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

export interface WholeNumberRange {
  readonly min: number;
  readonly max: number;
  /** What the number counts, for the message: "a number of bytes", "a whole number per second". */
  readonly unit: "count" | "bytes" | "per second";
  readonly defaultValue: string;
}

/** A whole number from `min` to `max`, written in decimal digits. */
export function wholeNumber({ min, max, unit, defaultValue }: WholeNumberRange): Parser<number> {
  const what = unit === "bytes" ? "a number of bytes" : unit === "per second" ? "a whole number per second" : "a whole number";
  return ({ name, value }) => {
    const number = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(number >= min && number <= max)) {
      throw new ConfigError(`${name} must be ${what} from ${min} to ${max} (default ${defaultValue}), got ${JSON.stringify(value)}`);
    }
    return number;
  };
}

/** true or false, 1 or 0: a switch's variable (a switch given as a flag reads "true"). */
export function parseBoolean({ name, value }: Given): boolean {
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new ConfigError(`${name} must be true or false (or 1 or 0), got ${JSON.stringify(value)}`);
}

/** One of a few words, e.g. json or sqlite. */
export function oneOf<const V extends string>(values: readonly V[]): Parser<V> {
  const accepted = values.length < 2 ? values.join("") : `${values.slice(0, -1).join(", ")} or ${values.at(-1) ?? ""}`;
  return ({ name, value }) => {
    const match = values.find((candidate) => candidate === value);
    if (match === undefined) throw new ConfigError(`${name} must be ${accepted}, got ${JSON.stringify(value)}`);
    return match;
  };
}

/** A file or directory name, as given (relative ones are relative to the working directory). */
export function pathTo(kind: "file" | "directory"): Parser<string> {
  return ({ name, value }) => {
    if (value === "") throw new ConfigError(`${name} must be the path of a ${kind}, got ""`);
    return value;
  };
}

/** The registry's gRPC address for the node daemon: host:port as a listener takes it, but a real port. */
export function parseRegistryAddress(given: Given): ListenAddress {
  const problem = `${given.name} must be the registry's gRPC address as host:port, e.g. 127.0.0.1:50051 or [::1]:50051, got ${JSON.stringify(given.value)}`;
  let address: ListenAddress;
  try {
    address = parseListenAddress(given);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(problem);
    throw error;
  }
  if (address.port === 0) throw new ConfigError(problem);
  return address;
}

/** The registry's HTTP listener for the client commands: an http:// or https:// URL, a path prefix allowed. */
export function parseRegistryUrl({ name, value }: Given): URL {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
    throw new ConfigError(
      `${name} must be the registry's HTTP address as an http:// or https:// URL, e.g. http://127.0.0.1:50052, got ${JSON.stringify(value)}`,
    );
  }
  return url;
}

export interface OllamaEndpoint {
  /** Ollama's base URL; the daemon probes `<url>/api/version`. */
  readonly ollamaUrl: string;
  /** The address to register: the URL's host when it is an IP address other than loopback or 0.0.0.0/::, else "". */
  readonly ipAddress: string;
  /** The URL's port, or the scheme's default (80, 443) as for any URL. */
  readonly port: number;
}

export function parseOllamaUrl({ name, value }: Given): OllamaEndpoint {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
    throw new ConfigError(`${name} must be Ollama's http:// or https:// URL, e.g. http://127.0.0.1:11434, got ${JSON.stringify(value)}`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  return { ollamaUrl: url.href, ipAddress: advertisedAddress(host), port };
}

/**
 * The Ollama host as the address to register, or "": Ollama on 127.0.0.1 (or a name such as localhost) is
 * reached from other hosts through the node's own address, which is what the server sees the daemon come from.
 */
function advertisedAddress(host: string): string {
  const unmapped = unmapIPv4(host);
  const version = isIP(unmapped);
  if (version === 0) return "";
  const loopback = version === 4 ? unmapped.startsWith("127.") : unmapped === "::1";
  const unspecified = unmapped === "0.0.0.0" || unmapped === "::";
  return loopback || unspecified ? "" : unmapped;
}

/** A bearer token as the node daemon and the CLI send it: the token alone, without its role or scheme. */
export function parseBearerToken({ name, value }: Given): string {
  if (!TOKEN_CHARACTERS.test(value)) {
    const hint = /^bearer\s/i.test(value)
      ? ' without "Bearer "'
      : value.includes(":")
        ? " without its role (the server's token list has role:token; give only the part after the colon)"
        : "";
    throw new ConfigError(`${name} must be the bearer token alone${hint}: characters A-Z a-z 0-9 - . _ ~ + /`);
  }
  return value;
}

/** An agent secret as a Register returned it (and agent-state.json keeps it): base64url, no padding. */
export function parseAgentSecret({ name, value }: Given): string {
  if (/^[A-Za-z0-9_-]+$/.test(value)) return value;
  throw new ConfigError(
    `${name} must be the agent_secret the node's first Register returned (as its agent-state.json holds it): characters A-Z a-z 0-9 - _, got ${value === "" ? '""' : "something else"}`,
  );
}

/** The host name a node registers under, by the registry's own rules; the default is this machine's. */
export function parseHostname({ name, value, from }: Given): string {
  const problem = hostnameProblem(value);
  if (problem === undefined) return value;
  throw new ConfigError(
    from === "default"
      ? `this machine's host name ${JSON.stringify(value)} cannot be registered (hostname: ${problem}); give one with ${name}`
      : `${name}: ${problem}`,
  );
}

/** `key=value` entries, each key once, as labels by the registry's own rules. */
export function parseLabels({ name, entries }: GivenEntries): Readonly<Record<string, string>> {
  const labels: Record<string, string> = {};
  for (const { value } of entries) {
    const equals = value.indexOf("=");
    if (equals <= 0) throw new ConfigError(`${name} must be key=value, e.g. ${name} gpu=a100, got ${JSON.stringify(value)}`);
    const key = value.slice(0, equals);
    if (Object.hasOwn(labels, key)) throw new ConfigError(`${name} ${key} is given more than once; give each key once`);
    labels[key] = value.slice(equals + 1);
  }
  const problem = labelsProblem(labels);
  if (problem !== undefined) throw new ConfigError(`${name}: ${problem}`);
  return labels;
}
