// The domain's one error type: a kind that says what went wrong and a message a person can act on.
// server/errors.ts is the one place that turns kinds into status codes.

export type RegistryErrorKind =
  | "invalidArgument"
  | "notFound"
  | "aborted"
  | "unavailable"
  | "resourceExhausted"
  | "failedPrecondition";

export class RegistryError extends Error {
  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RegistryError";
  }
}

export const invalidArgument = (field: string, rule: string): RegistryError =>
  new RegistryError("invalidArgument", `${field}: ${rule}`);

/** `hint` says what the caller should do, where there is something to do (e.g. register first). */
export const agentNotFound = (id: string, hint?: string): RegistryError =>
  new RegistryError("notFound", `no agent with id ${id}${hint === undefined ? "" : `; ${hint}`}`);
