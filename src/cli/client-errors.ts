// The one place where a failed call to the registry becomes the line the CLI prints after "agent-registry: ".
// Connection failures name the URL; the server's own messages (NOT_FOUND names the id, INVALID_ARGUMENT
// the field and the rule) are already written for people and pass through as they are.

import { Code, ConnectError } from "@connectrpc/connect";
import { SETTINGS, flagAndEnv } from "../config/index.js";

export interface CallContext {
  /** The registry URL the CLI called. */
  readonly url: string;
  /** The RPC, e.g. "WatchAgents". */
  readonly method: string;
}

const UNTRUSTED = `its TLS certificate is not signed by a CA this machine trusts; give the CA with ${flagAndEnv(SETTINGS.ca)}`;

/** Node's error codes for "the connection never worked", in words. */
const CONNECTION_PROBLEMS: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "no such host",
  EAI_AGAIN: "the host name could not be resolved",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ECONNRESET: "the connection was reset",
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED,
  DEPTH_ZERO_SELF_SIGNED_CERT: UNTRUSTED,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED,
  CERT_HAS_EXPIRED: "its TLS certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID: "its TLS certificate is not for this host name or address; use one the certificate names",
  ERR_SSL_WRONG_VERSION_NUMBER: "it does not speak TLS (is it a plaintext http:// listener?)",
};

/** Node's HTTP/1.1 parser failed: something answered, but not in HTTP/1.1, typically the gRPC-only port. */
const NOT_HTTP1 = "it does not speak HTTP/1.1 (is it the gRPC port? the CLI needs the HTTP listener, port 50052 by default)";

export function describeCallError(error: unknown, { url, method }: CallContext): string {
  const problem = connectionProblem(error);
  if (problem !== undefined) return `cannot reach the registry at ${url}: ${problem}`;
  const { code, rawMessage } = ConnectError.from(error);
  switch (code) {
    case Code.NotFound:
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.AlreadyExists:
    case Code.OutOfRange:
    case Code.ResourceExhausted:
      return rawMessage;
    case Code.Unavailable:
      return `the registry at ${url} is unavailable: ${rawMessage}`;
    case Code.DeadlineExceeded:
      return `the registry at ${url} did not answer ${method} in time: ${rawMessage}`;
    case Code.Unimplemented:
      return `the registry at ${url} does not support ${method}: ${rawMessage}`;
    case Code.Unauthenticated:
      return `the registry at ${url} wants credentials for ${method}: ${rawMessage}`;
    case Code.PermissionDenied:
      return `the registry at ${url} does not allow ${method}: ${rawMessage}`;
    default:
      return `${method} at ${url} failed (${Code[code]}): ${rawMessage}`;
  }
}

/** The first known Node error code along the error's cause chain, in words. */
function connectionProblem(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let cause = error; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause);
    const code = "code" in cause && typeof cause.code === "string" ? cause.code : undefined;
    const problem = code === undefined ? undefined : code.startsWith("HPE_") ? NOT_HTTP1 : CONNECTION_PROBLEMS[code];
    if (problem !== undefined) return problem;
  }
  return undefined;
}
