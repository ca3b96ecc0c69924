// Whether a failure is only a client hanging up: the errors Node raises when a response is written to a
// stream, HTTP/2 session or socket the peer has reset or closed. Such a failure is no fault of the server
// and nobody is left to answer, so it is logged at debug, without a stack, never as an error.

const GONE = new Set([
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_STREAM_WRITE_AFTER_END",
  "ERR_HTTP2_INVALID_STREAM",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
]);

/** The first Node error code along the cause chain that means the peer went away, or undefined. */
export function disconnectCode(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let cause = error; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause);
    const code = "code" in cause && typeof cause.code === "string" ? cause.code : undefined;
    if (code !== undefined && GONE.has(code)) return code;
  }
  return undefined;
}

/** What a debug line says about a disconnect: the code and message, no stack. */
export function disconnectFields(error: unknown): { readonly code: string | undefined; readonly reason: string } {
  return { code: disconnectCode(error), reason: error instanceof Error ? error.message : String(error) };
}
