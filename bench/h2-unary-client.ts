// A gRPC unary caller straight on node:http2, one session (one TCP connection) per client, for the
// registration storm: grpc-js's client spends ~300 µs of CPU per unary call (interceptors, call stack,
// metadata), which caps one generator core near 3 000 calls/s, below what the server under test can take.
// The bytes on the wire are gRPC's (length-prefixed message, grpc-status in the trailers); no retries, no
// name resolution, loopback h2c only.

import { type ClientHttp2Session, type IncomingHttpHeaders, connect } from "node:http2";

/** A call that ended with a grpc-status other than OK (or no status at all: INTERNAL). */
export class UnaryCallError extends Error {
  constructor(
    readonly code: number,
    details: string,
  ) {
    super(details);
  }
}

const INTERNAL = 13;
const UNAVAILABLE = 14;

export class H2UnaryClient {
  private readonly session: ClientHttp2Session;
  private readonly connected: Promise<void>;

  constructor(address: string) {
    this.session = connect(`http://${address}`);
    this.connected = new Promise((resolve, reject) => {
      this.session.once("connect", () => resolve());
      this.session.once("error", reject);
    });
    // A failed session fails its calls (each has its own error handler); nothing more to do here.
    this.session.on("error", () => {});
  }

  /** Resolves once the connection is up (HTTP/2 settings exchanged). */
  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no HTTP/2 connection within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.connected, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One unary call: `message` is the encoded request; resolves with the encoded response. */
  call(path: string, message: Uint8Array, deadlineMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let request;
      try {
        request = this.session.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": `${deadlineMs}m`,
        });
      } catch (error) {
        reject(new UnaryCallError(UNAVAILABLE, (error as Error).message));
        return;
      }
      const chunks: Buffer[] = [];
      let status: IncomingHttpHeaders | undefined;
      // A trailers-only response (an error) carries grpc-status in its headers.
      request.on("response", (headers) => {
        if (headers["grpc-status"] !== undefined) status = headers;
      });
      request.on("trailers", (trailers) => (status = trailers));
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("error", (error) => reject(new UnaryCallError(UNAVAILABLE, error.message)));
      request.on("end", () => {
        const code = status === undefined ? INTERNAL : Number(status["grpc-status"]);
        if (code !== 0) {
          reject(new UnaryCallError(Number.isInteger(code) ? code : INTERNAL, String(status?.["grpc-message"] ?? "no grpc-status")));
          return;
        }
        const body = Buffer.concat(chunks);
        if (body.length < 5 || body[0] !== 0) {
          reject(new UnaryCallError(INTERNAL, "not one uncompressed length-prefixed message"));
          return;
        }
        resolve(body.subarray(5, 5 + body.readUInt32BE(1)));
      });
      const frame = Buffer.allocUnsafe(5 + message.length);
      frame[0] = 0;
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      request.end(frame);
    });
  }

  close(): void {
    this.session.close();
  }
}
