// The start-up rule for exposure: a listener beyond loopback with authentication off would let anyone on
// the network register fake nodes, take over ids and remove the fleet, so the server refuses to start unless
// the operator says --insecure-allow-unauthenticated, and then warns at every start. Bearer tokens sent in
// plaintext beyond loopback can be read off the network: that is warned about too.

import { isIP } from "node:net";
import { unmapIPv4 } from "../common/registration-rules.js";
import type { Log } from "../common/log.js";
import { ConfigError, type ListenAddress, type ServerConfig, authenticationEnabled, formatAddress } from "../config/index.js";

/** Throws a ConfigError, or logs its warnings and returns. */
export function guardExposure(config: ServerConfig, log: Log): void {
  const exposed = [
    { flag: "--grpc-listen", address: config.grpcListen },
    { flag: "--http-listen", address: config.httpListen },
  ].filter(({ address }) => !isLoopback(address));
  if (exposed.length === 0) return;
  const where = exposed.map(({ flag, address }) => `${formatAddress(address)} (${flag})`).join(" and ");
  if (!authenticationEnabled(config.security)) {
    if (!config.security.allowUnauthenticated) {
      throw new ConfigError(
        `refusing to listen on ${where} with authentication off: anyone who can reach it could register fake nodes, take over node ids and remove the fleet. ` +
          "Configure tokens (REGISTRY_TOKENS, --token or --token-file) or client certificates (--tls-client-ca), " +
          "listen on 127.0.0.1 only, or pass --insecure-allow-unauthenticated (REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED=true) if a network boundary protects it",
      );
    }
    log.warn(
      { listeners: exposed.map(({ address }) => formatAddress(address)) },
      `listening on ${where} with authentication off (--insecure-allow-unauthenticated): anyone who can reach it can register, take over and remove nodes`,
    );
  } else if (config.security.tls === undefined) {
    log.warn(
      { listeners: exposed.map(({ address }) => formatAddress(address)) },
      `listening on ${where} without TLS: bearer tokens and agent secrets cross the network in plaintext; configure --tls-cert and --tls-key`,
    );
  }
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and the name localhost; anything else (0.0.0.0, ::, a DNS name) is not. */
export function isLoopback({ host }: ListenAddress): boolean {
  const lower = host.toLowerCase();
  if (lower === "localhost") return true;
  const unmapped = unmapIPv4(lower);
  if (isIP(unmapped) === 4) return unmapped.startsWith("127.");
  return unmapped === "::1" || unmapped === "0:0:0:0:0:0:0:1";
}
