// The HTTP listener: one port that serves HTTP/1.1 (Connect unary and server streams, gRPC-Web; what
// curl speaks) and h2c with prior knowledge (Connect and gRPC bidi streams). Node's plaintext http2
// server does not serve HTTP/1.1 clients, so each connection is routed by its first bytes. With TLS, one
// secure http2 server serves both: ALPN settles h2 or HTTP/1.1 in the handshake, no sniffing needed.

import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type * as tls from "node:tls";

/** How long shutdown waits for clients to take the last bytes and hang up before it cuts connections. */
const FLUSH_MS = 200;
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export type RequestHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface HttpListener {
  readonly server: net.Server;
  /** With TLS: the certificate, key and CA new connections get from now on (open ones keep theirs). */
  updateTls(options: tls.SecureContextOptions): void;
  /** Stops accepting, lets open requests finish for `graceMs`, then closes every connection. */
  close(graceMs: number): Promise<void>;
}

/** The h2 side's stream limit, and a hook to watch the h2 server (for the limit's log line). */
export interface HttpStreamLimits {
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: clients queue streams beyond it; the server refuses extras. */
  readonly maxStreamsPerConnection: number;
  readonly watch?: (server: http2.Http2Server | http2.Http2SecureServer) => void;
  /**
   * Ping every HTTP/2 connection this often, and close one whose previous ping went unanswered: a
   * half-open peer's Heartbeat stream is noticed and closed, as on the gRPC port.
   */
  readonly keepaliveTimeMs?: number;
}

/**
 * Header fields one request may carry. A Connect or gRPC-Web call needs about ten and a browser sends some
 * twenty; Node itself would take up to 2 000 and drop the rest unseen. (Their size is bounded by Node's
 * 16 KB, answered 431 too; HTTP/2 by its own limit of 128 fields.)
 */
export const MAX_HEADER_FIELDS = 100;

/** How long a new plaintext connection may take to send its first bytes before it is closed. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

/** `tls` set: HTTPS (h2 and HTTP/1.1 by ALPN) instead of plaintext HTTP/1.1 and h2c. */
export function createHttpListener(handler: RequestHandler, tls?: http2.SecureServerOptions, streams?: HttpStreamLimits): HttpListener {
  const settings: http2.Settings = streams === undefined ? {} : { maxConcurrentStreams: streams.maxStreamsPerConnection };
  // Requests in flight: shutdown waits for them (up to a grace period), then cuts every connection. Idle
  // keep-alive connections are not waited for: HTTP/2 clients may keep a connection open after GOAWAY.
  let inFlight = 0;
  let drained: (() => void) | undefined;
  let closing = false;
  const counted: RequestHandler = (request, response) => {
    if (closing) {
      // In the Connect protocol's error shape; a person reading it with curl understands it too.
      // `connection: close` only means something (and is only allowed) in HTTP/1.1.
      const close = request.httpVersionMajor === 1 ? { connection: "close" } : {};
      response.writeHead(503, { "content-type": "application/json", ...close });
      response.end(JSON.stringify({ code: "unavailable", message: "the registry server is shutting down; retry with backoff" }));
      return;
    }
    const refusal = headerProblem(request);
    if (refusal !== undefined) {
      const close = request.httpVersionMajor === 1 ? { connection: "close" } : {};
      response.writeHead(refusal.status, { "content-type": "text/plain; charset=utf-8", ...close });
      response.end(`${refusal.message}\n`);
      return;
    }
    inFlight++;
    response.once("close", () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
    handler(request, response);
  };
  const h2Handler = counted as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void;
  const sessions = new Set<http2.ServerHttp2Session>();
  const trackSessions = (h2: http2.Http2Server | http2.Http2SecureServer): void => {
    streams?.watch?.(h2);
    h2.on("session", (session) => {
      sessions.add(session);
      const stopPinging = keepalive(session, streams?.keepaliveTimeMs);
      session.on("close", () => {
        sessions.delete(session);
        stopPinging();
      });
    });
  };
  const sockets = new Set<net.Socket>();
  let allClosed: (() => void) | undefined;
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) allClosed?.();
    });
  };
  let server: net.Server;
  let h1: http.Server | undefined;
  let secureServer: http2.Http2SecureServer | undefined;
  if (tls === undefined) {
    // Node keeps the first maxHeadersCount fields and drops the rest unseen (a Host among them would make
    // it answer a bare 400): keeping one more than allowed lets headerProblem() see that there were too many.
    const plain = http.createServer({ requireHostHeader: false }, counted as http.RequestListener);
    plain.maxHeadersCount = MAX_HEADER_FIELDS + 1;
    const h2 = http2.createServer({ settings }, h2Handler);
    trackSessions(h2);
    h1 = plain;
    server = net.createServer((socket) => {
      track(socket);
      route(socket, (isH2) => (isH2 ? h2 : plain).emit("connection", socket));
    });
  } else {
    const secure = http2.createSecureServer({ ...tls, allowHTTP1: true, settings }, h2Handler);
    trackSessions(secure);
    secure.on("connection", track);
    // A failed handshake (a client that does not trust this certificate, a bad client certificate) only
    // closes that connection; the client sees why.
    secure.on("tlsClientError", () => undefined);
    server = secure;
    secureServer = secure;
  }
  return {
    server,
    updateTls(options) {
      if (secureServer === undefined) throw new Error("the HTTP listener has no TLS to update");
      secureServer.setSecureContext(options);
    },
    async close(graceMs) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      // Let the last responses and GOAWAY frames reach the clients, then cut what is still open.
      h1?.closeIdleConnections();
      for (const session of sessions) session.close();
      if (sockets.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, FLUSH_MS);
          allClosed = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** A request refused for its headers: too many of them (431), or HTTP/1.1 without a Host (400). */
function headerProblem(request: http.IncomingMessage | http2.Http2ServerRequest): { status: number; message: string } | undefined {
  const fields = request.rawHeaders.length / 2;
  if (fields > MAX_HEADER_FIELDS) {
    return { status: 431, message: `too many header fields: a request may carry at most ${MAX_HEADER_FIELDS}` };
  }
  if (request.httpVersionMajor === 1 && request.headers.host === undefined) {
    return { status: 400, message: "the request has no Host header, which HTTP/1.1 requires" };
  }
  return undefined;
}

/** Reads until the bytes are known to start (or not) with the HTTP/2 preface, then hands the socket on. */
function route(socket: net.Socket, to: (isH2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  // A connection that never says which protocol it speaks would otherwise be held forever.
  socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
  const onData = (chunk: Buffer): void => {
    seen = Buffer.concat([seen, chunk]);
    const length = Math.min(seen.length, H2_PREFACE.length);
    const isPrefix = seen.subarray(0, length).equals(H2_PREFACE.subarray(0, length));
    if (isPrefix && seen.length < H2_PREFACE.length) return;
    socket.off("data", onData);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(seen);
    to(isPrefix);
    // The HTTP/1.1 parser reads from the flowing stream. The http2 session takes what is buffered on its
    // next tick (resuming before that would let those bytes flow past it); the socket must flow again
    // after that, or its end is never seen and a gracefully closed session keeps its socket open.
    if (isPrefix) setImmediate(() => socket.resume());
    else socket.resume();
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
}

/** Pings `session` every `intervalMs`; one still unanswered at the next ping closes it. Returns the stop. */
function keepalive(session: http2.ServerHttp2Session, intervalMs: number | undefined): () => void {
  if (intervalMs === undefined) return () => undefined;
  let waiting = false;
  const timer = setInterval(() => {
    if (session.destroyed || session.closed) return;
    if (waiting) {
      session.destroy();
      return;
    }
    waiting = true;
    const sent = session.ping((error) => {
      waiting = false;
      if (error !== null && !session.destroyed) session.destroy();
    });
    if (!sent) waiting = false; // too many pings in flight already: try next time
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
