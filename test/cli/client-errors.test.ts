import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { describeCallError } from "../../src/cli/client-errors.js";

const context = { url: "http://127.0.0.1:50052", method: "GetAgent" };

/** A Node system error as the http module raises it. */
function systemError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** What connect-node throws for a failed request: a ConnectError caused by the Node error. */
function fromNode(cause: Error, code: Code): ConnectError {
  const error = new ConnectError(cause.message, code);
  error.cause = cause;
  return error;
}

describe("the one line for a failed call", () => {
  it("says the registry cannot be reached when the connection is refused", () => {
    const error = fromNode(systemError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:50052"), Code.Unavailable);
    expect(describeCallError(error, context)).toBe("cannot reach the registry at http://127.0.0.1:50052: connection refused");
  });

  it("says so for an unknown host", () => {
    const error = fromNode(systemError("ENOTFOUND", "getaddrinfo ENOTFOUND gpu-registry"), Code.Unavailable);
    expect(describeCallError(error, context)).toBe("cannot reach the registry at http://127.0.0.1:50052: no such host");
  });

  it("points at the HTTP listener when something answers in a protocol other than HTTP/1.1", () => {
    const error = fromNode(systemError("HPE_INVALID_CONSTANT", "Parse Error: Expected HTTP/"), Code.Internal);
    expect(describeCallError(error, context)).toMatch(/^cannot reach the registry at \S+: it does not speak HTTP\/1\.1 .*HTTP listener/);
  });

  it.each([Code.NotFound, Code.InvalidArgument, Code.ResourceExhausted, Code.FailedPrecondition])(
    "passes the server's own message through for code %s",
    (code) => {
      const message = "no agent with id 3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";
      expect(describeCallError(new ConnectError(message, code), context)).toBe(message);
    },
  );

  it("names the URL and the call when the server does not implement it", () => {
    const error = new ConnectError("WatchAgents is not available in this version", Code.Unimplemented);
    expect(describeCallError(error, { ...context, method: "WatchAgents" })).toBe(
      "the registry at http://127.0.0.1:50052 does not support WatchAgents: WatchAgents is not available in this version",
    );
  });

  it("names the URL when the server is unavailable without a connection error", () => {
    const error = new ConnectError("the registry server is shutting down", Code.Unavailable);
    expect(describeCallError(error, context)).toBe("the registry at http://127.0.0.1:50052 is unavailable: the registry server is shutting down");
  });

  it("names the code for anything unexpected", () => {
    const error = new ConnectError("internal error in the registry", Code.Internal);
    expect(describeCallError(error, context)).toBe("GetAgent at http://127.0.0.1:50052 failed (Internal): internal error in the registry");
  });

  it("is one line", () => {
    const error = fromNode(systemError("ECONNRESET", "socket hang up"), Code.Aborted);
    expect(describeCallError(error, context)).not.toContain("\n");
  });
});
