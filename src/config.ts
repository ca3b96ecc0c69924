// Configuration: environment variables and command-line flags (flags win) become one validated, typed
// Config, or a ConfigError whose message names the variable or flag and what it accepts.

import { homedir } from "node:os";
import { join } from "node:path";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface ServerConfig {
  readonly heartbeatIntervalMs: number;
  readonly agentTimeoutMs: number;
  readonly grpcListen: ListenAddress;
  readonly httpListen: ListenAddress;
  readonly dataDir: string;
}

/** Flag values as the CLI parsed them (strings, unvalidated); absent means "not given". */
export interface ServerFlags {
  heartbeatInterval?: string | undefined;
  agentTimeout?: string | undefined;
  grpcListen?: string | undefined;
  httpListen?: string | undefined;
  dataDir?: string | undefined;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export const DEFAULTS = {
  HEARTBEAT_INTERVAL: "30",
  AGENT_TIMEOUT: "60",
  REGISTRY_GRPC_LISTEN: "127.0.0.1:50051",
  REGISTRY_HTTP_LISTEN: "127.0.0.1:50052",
  REGISTRY_ADDR: "127.0.0.1:50051",
  REGISTRY_URL: "http://127.0.0.1:50052",
} as const;

/** One day: far beyond any sane interval, and within what a timer can wait. */
const MAX_SECONDS = 86_400;

interface Setting {
  /** What to name in an error: the flag if it was given, else the variable. */
  readonly name: string;
  readonly value: string;
}

function setting(env: NodeJS.ProcessEnv, variable: string, flag: string, flagValue: string | undefined): Setting | undefined {
  if (flagValue !== undefined) return { name: flag, value: flagValue };
  const value = env[variable];
  return value === undefined || value === "" ? undefined : { name: variable, value };
}

export function loadServerConfig(env: NodeJS.ProcessEnv, flags: ServerFlags = {}): ServerConfig {
  const interval = setting(env, "HEARTBEAT_INTERVAL", "--heartbeat-interval", flags.heartbeatInterval) ?? {
    name: "HEARTBEAT_INTERVAL",
    value: DEFAULTS.HEARTBEAT_INTERVAL,
  };
  const timeout = setting(env, "AGENT_TIMEOUT", "--agent-timeout", flags.agentTimeout) ?? {
    name: "AGENT_TIMEOUT",
    value: DEFAULTS.AGENT_TIMEOUT,
  };
  const heartbeatIntervalMs = parseSeconds(interval);
  const agentTimeoutMs = parseSeconds(timeout);
  if (agentTimeoutMs <= heartbeatIntervalMs) {
    throw new ConfigError(
      `${timeout.name} (${timeout.value} s) must be greater than ${interval.name} (${interval.value} s), so that one missed beat never marks a node offline; the defaults are 60 and 30`,
    );
  }
  const grpcListen = parseListenAddress(
    setting(env, "REGISTRY_GRPC_LISTEN", "--grpc-listen", flags.grpcListen) ?? {
      name: "REGISTRY_GRPC_LISTEN",
      value: DEFAULTS.REGISTRY_GRPC_LISTEN,
    },
  );
  const httpListen = parseListenAddress(
    setting(env, "REGISTRY_HTTP_LISTEN", "--http-listen", flags.httpListen) ?? {
      name: "REGISTRY_HTTP_LISTEN",
      value: DEFAULTS.REGISTRY_HTTP_LISTEN,
    },
  );
  const dataDir = setting(env, "REGISTRY_DATA_DIR", "--data-dir", flags.dataDir)?.value ?? join(homedir(), ".ollama-router");
  return { heartbeatIntervalMs, agentTimeoutMs, grpcListen, httpListen, dataDir };
}

function parseSeconds({ name, value }: Setting): number {
  const seconds = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  // Checked after rounding to whole milliseconds: 0.0001 s would become 0 ms, and the registry divides by
  // the interval.
  const ms = Math.round(seconds * 1000);
  if (!(ms >= 1 && seconds <= MAX_SECONDS)) {
    throw new ConfigError(
      `${name} must be a number of seconds from 0.001 to ${MAX_SECONDS} (fractions allowed, e.g. 0.5), got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

/** `host:port` or `[v6]:port`; port 0 picks a free port. The host is required: no implicit 0.0.0.0. */
export function parseListenAddress({ name, value }: Setting): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new ConfigError(
      `${name} must be host:port, e.g. 127.0.0.1:50051 or [::1]:50051 (port 0 picks a free one), got ${JSON.stringify(value)}`,
    );
  }
  return { host: match[1] ?? match[2] ?? "", port };
}

export function formatAddress({ host, port }: ListenAddress): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
