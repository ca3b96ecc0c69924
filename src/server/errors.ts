// The one place where failures become status codes (the same for gRPC and Connect: their codes are the
// same numbers). Unexpected errors are logged in full and reach the client only as a short INTERNAL.

import { Code, ConnectError } from "@connectrpc/connect";
import type { Log } from "../common/log.js";
import { RegistryError, type RegistryErrorKind } from "../registry/registry-error.js";

const CODES: Record<RegistryErrorKind, Code> = {
  invalidArgument: Code.InvalidArgument,
  notFound: Code.NotFound,
  aborted: Code.Aborted,
  unavailable: Code.Unavailable,
  resourceExhausted: Code.ResourceExhausted,
  failedPrecondition: Code.FailedPrecondition,
  deadlineExceeded: Code.DeadlineExceeded,
  unauthenticated: Code.Unauthenticated,
  permissionDenied: Code.PermissionDenied,
};

export interface Status {
  readonly code: Code;
  readonly message: string;
  /** A retry hint for the client: sent as `grpc-retry-pushback-ms` (gRPC) and `retry-after` (HTTP). */
  readonly retryAfterMs?: number | undefined;
}

/** `detailed`: the caller may read the server's internals (disclosure.ts), such as the store's file path. */
export function toStatus(error: unknown, log: Log, detailed = false): Status {
  if (error instanceof RegistryError) {
    const message = detailed ? (error.detailedMessage ?? error.message) : error.message;
    return { code: CODES[error.kind], message, retryAfterMs: error.retryAfterMs };
  }
  if (error instanceof ConnectError) return { code: error.code, message: error.rawMessage };
  log.error({ err: error }, "unexpected error while serving a request");
  return { code: Code.Internal, message: "internal error in the registry; the server log has the details" };
}

export function toConnectError(error: unknown, log: Log, detailed = false): ConnectError {
  if (error instanceof ConnectError) return error;
  const status = toStatus(error, log, detailed);
  return new ConnectError(status.message, status.code, retryHeaders(status));
}

/** The retry hint as metadata: the gRPC name (milliseconds) and HTTP's Retry-After (whole seconds). */
export function retryHeaders(status: Status): Record<string, string> | undefined {
  if (status.retryAfterMs === undefined) return undefined;
  return {
    "grpc-retry-pushback-ms": String(status.retryAfterMs),
    "retry-after": String(Math.max(1, Math.ceil(status.retryAfterMs / 1000))),
  };
}
