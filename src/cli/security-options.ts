// The `serve` flags for security settings (see src/config/security-config.ts for what they mean and their env).

import { type Command, Option } from "commander";
import type { SecurityFlags } from "../config/index.js";

export function addSecurityOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--token <role:token>", "a bearer token and its role (agent, reader or admin); repeat for more (env REGISTRY_TOKENS: comma-separated)")
        .argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
    )
    .addOption(new Option("--token-file <path>", "a file of role:token lines (# comments), read again on SIGHUP").env("REGISTRY_TOKEN_FILE"))
    .addOption(new Option("--tls-cert <path>", "the server's TLS certificate chain (PEM), for both listeners").env("REGISTRY_TLS_CERT"))
    .addOption(new Option("--tls-key <path>", "the private key of --tls-cert (PEM)").env("REGISTRY_TLS_KEY"))
    .addOption(
      new Option("--tls-client-ca <path>", "require client certificates signed by this CA (PEM): mutual TLS").env("REGISTRY_TLS_CLIENT_CA"),
    )
    .addOption(
      new Option(
        "--insecure-allow-unauthenticated",
        "allow listening beyond loopback with authentication off (warned at every start)",
      ),
    );
}

/** The security flags the user gave (env is read by config). */
export function securityFlags(options: Record<string, unknown>, command: Command): SecurityFlags {
  const given = (key: string): boolean => command.getOptionValueSource(key) === "cli";
  const text = (key: string): string | undefined => (given(key) && typeof options[key] === "string" ? options[key] : undefined);
  return {
    insecureAllowUnauthenticated: given("insecureAllowUnauthenticated") ? options["insecureAllowUnauthenticated"] === true : undefined,
    token: Array.isArray(options["token"]) ? options["token"].map(String) : undefined,
    tokenFile: text("tokenFile"),
    tlsCert: text("tlsCert"),
    tlsKey: text("tlsKey"),
    tlsClientCa: text("tlsClientCa"),
  };
}
