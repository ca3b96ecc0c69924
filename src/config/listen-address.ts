// `host:port` (`[v6]:port` for IPv6) as the listeners and the node daemon take an address, and as messages
// and the start line show it.

import { ConfigError } from "./config-error.js";
import type { Given } from "./setting.js";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `host:port` or `[v6]:port`; port 0 picks a free port. The host is required: no implicit 0.0.0.0. */
export function parseListenAddress({ name, value }: Pick<Given, "name" | "value">): ListenAddress {
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
