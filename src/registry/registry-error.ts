// The domain's one error type: a kind that says what went wrong and a message a person can act on.
// server/errors.ts is the one place that turns kinds into status codes.

export type RegistryErrorKind =
  | "invalidArgument"
  | "notFound"
  | "aborted"
  | "unavailable"
  | "resourceExhausted"
  | "failedPrecondition"
  /** A wait the caller was given ran out (a Heartbeat stream that never sent its first message). */
  | "deadlineExceeded"
  /** No credentials, or credentials the server does not know (a missing or unknown bearer token). */
  | "unauthenticated"
  /** Known credentials that do not allow this (a role without the method, another node's agent secret). */
  | "permissionDenied";

export class RegistryError extends Error {
  /** For a limit that frees up by itself (a rate): how long the caller should wait before retrying. */
  readonly retryAfterMs: number | undefined;
  /**
   * The message with the server's internals (the store's file path), for callers trusted with them; the
   * message itself names the problem only. Undefined when the message holds nothing to hide.
   */
  readonly detailedMessage: string | undefined;

  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number; detailedMessage?: string },
  ) {
    super(message, options);
    this.name = "RegistryError";
    this.retryAfterMs = options?.retryAfterMs;
    this.detailedMessage = options?.detailedMessage;
  }
}

export const invalidArgument = (field: string, rule: string): RegistryError =>
  new RegistryError("invalidArgument", `${field}: ${rule}`);

/** `hint` says what the caller should do, where there is something to do (e.g. register first). */
export const agentNotFound = (id: string, hint?: string): RegistryError =>
  new RegistryError("notFound", `no agent with id ${id}${hint === undefined ? "" : `; ${hint}`}`);
