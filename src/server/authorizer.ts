// The one check every AgentRegistry call passes on both listeners (grpc-server.ts wraps each handler, and
// connect-auth.ts's interceptor calls it): who is calling (a bearer token, or under mutual TLS a client
// certificate naming a role) and whether that role may call the method. Not the agent secrets (registry.ts).
//
// It runs before the handler, so before any lookup, and its answers never depend on the request: an
// unauthorized caller cannot tell whether an agent id exists.

import { type PeerCertificate, TLSSocket } from "node:tls";
import { RegistryError } from "../registry/registry-error.js";
import { type Role, isRole } from "../config/index.js";
import type { TokenSet } from "./token-set.js";

export type RegistryMethod = "Register" | "Heartbeat" | "ListAgents" | "GetAgent" | "Deregister" | "WatchAgents";

/**
 * Which roles may call each method. An agent may deregister only itself: the registry asks for the
 * agent's secret (an admin needs none).
 */
export const PERMISSIONS: Readonly<Record<RegistryMethod, readonly Role[]>> = {
  Register: ["agent", "admin"],
  Heartbeat: ["agent", "admin"],
  Deregister: ["agent", "admin"],
  ListAgents: ["reader", "admin"],
  GetAgent: ["reader", "admin"],
  WatchAgents: ["reader", "admin"],
};

export interface ClientCertificate {
  /** Verified against the server's client CA. */
  readonly verified: boolean;
  /** The role its subject's OU names (agent, reader or admin); undefined if none, or more than one. */
  readonly role: Role | undefined;
  /** The subject's CN, for messages. */
  readonly commonName: string | undefined;
}

export interface CallCredentials {
  /** The `authorization` metadata (gRPC) or header (Connect) as sent. */
  readonly authorization: string | undefined;
  readonly clientCertificate: ClientCertificate | undefined;
}

/** Who is calling: a role, or undefined when authentication is off (then anyone may do anything). */
export interface Caller {
  readonly role: Role | undefined;
}

export const ANYONE: Caller = { role: undefined };

export interface AuthorizerOptions {
  /** Off: every call is let through as ANYONE (the prototype's behaviour). */
  readonly enabled: boolean;
  /** Mutual TLS: every call must come with a verified client certificate. */
  readonly clientCertificates: boolean;
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export class Authorizer {
  constructor(
    private tokens: TokenSet,
    private readonly options: AuthorizerOptions,
  ) {}

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** Takes effect for calls that start from now on (open streams keep the role they started with). */
  replaceTokens(tokens: TokenSet): void {
    this.tokens = tokens;
  }

  /** The caller, or a RegistryError: unauthenticated (no or unknown credentials) or permissionDenied (role). */
  authorize(method: string, credentials: CallCredentials): Caller {
    if (!this.options.enabled) return ANYONE;
    const certificate = credentials.clientCertificate;
    if (this.options.clientCertificates && certificate?.verified !== true) {
      throw new RegistryError(
        "unauthenticated",
        "this server requires a client certificate signed by its client CA (mutual TLS); connect with --cert and --key",
      );
    }
    const role = this.roleOf(method, credentials.authorization, certificate);
    const allowed = (PERMISSIONS as Readonly<Record<string, readonly Role[] | undefined>>)[method] ?? [];
    if (!allowed.includes(role)) {
      throw new RegistryError(
        "permissionDenied",
        allowed.length === 0
          ? `no role may call ${method}`
          : `the ${role} role may not call ${method}; it takes the ${allowed.join(" or ")} role`,
      );
    }
    return { role };
  }

  private roleOf(method: string, authorization: string | undefined, certificate: ClientCertificate | undefined): Role {
    if (authorization !== undefined && authorization !== "") {
      const token = BEARER.exec(authorization)?.[1];
      if (token === undefined) {
        throw new RegistryError("unauthenticated", 'the authorization metadata must be "Bearer <token>"');
      }
      const role = this.tokens.roleOf(token);
      if (role === undefined) {
        throw new RegistryError("unauthenticated", "the bearer token is not one this server accepts (was it removed from the token file?)");
      }
      return role;
    }
    if (certificate?.verified === true && certificate.role !== undefined) return certificate.role;
    const certificateHint = this.options.clientCertificates
      ? ` (or a client certificate whose subject OU is agent, reader or admin; ${certificate?.commonName === undefined ? "this one" : `CN=${certificate.commonName}`} names no role)`
      : "";
    throw new RegistryError(
      "unauthenticated",
      `${method} needs credentials: send the metadata "authorization: Bearer <token>" (agent-registry: --token or REGISTRY_TOKEN)${certificateHint}`,
    );
  }
}

/** What a TLS peer certificate says about the caller; undefined when there is none. */
export function clientCertificateOf(peer: PeerCertificate | undefined, verified: boolean): ClientCertificate | undefined {
  if (peer === undefined || peer.raw === undefined) return undefined;
  const subject = peer.subject as unknown as Record<string, string | string[] | undefined> | undefined;
  const units = [subject?.["OU"] ?? []].flat();
  const roles = new Set(units.filter(isRole));
  const commonName = [subject?.["CN"] ?? []].flat()[0];
  return { verified, role: roles.size === 1 ? [...roles][0] : undefined, commonName };
}

/** The client certificate of a connection (an HTTP request's socket); undefined on plaintext. */
export function clientCertificateOfSocket(socket: unknown): ClientCertificate | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  return clientCertificateOf(socket.getPeerCertificate(), socket.authorized);
}
