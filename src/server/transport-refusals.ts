// Refusals the libraries make by themselves, noticed for the log: grpc-js and connect-node refuse an
// oversized message (RESOURCE_EXHAUSTED) before any handler runs, and HTTP/2 enforces the per-connection
// stream limit (clients queue further streams; one that ignores the limit gets REFUSED_STREAM, which
// the server never sees). None of them says so, so this watches for it and tells the LimitLog.

import type * as grpc from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { LimitLog } from "./limit-log.js";

type Listener = "grpc" | "http";

/** Logs when one HTTP/2 connection has `limit` streams open at once (and so further ones must wait). */
export function watchConnectionStreams(
  server: http2.Http2Server | http2.Http2SecureServer,
  limit: number,
  log: LimitLog,
  listener: Listener,
): void {
  const open = new WeakMap<http2.Http2Session, number>();
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    const session = stream.session;
    if (session === undefined) return;
    const count = (open.get(session) ?? 0) + 1;
    open.set(session, count);
    // `on`, not `once`: "close" comes once per stream anyway, and `once` keeps a wrapper on every
    // long-lived stream (a heartbeat stream lives for days).
    stream.on("close", () => open.set(session, (open.get(session) ?? 1) - 1));
    if (count === limit) {
      log.refused(
        "maxStreamsPerConnection",
        { listener, peer: session.socket?.remoteAddress, max: limit },
        "a connection reached its limit of concurrent streams: further streams wait for one to end",
      );
    }
  });
}

/**
 * Watches the grpc-js server's HTTP/2 servers (call after binding): streams per connection, and messages
 * grpc-js refused as too large. grpc-js has no public hook for either, so this reads its http2Servers
 * field; if a grpc-js upgrade drops it, nothing is logged (and the limit tests say so), nothing breaks.
 */
export function watchGrpcListener(server: grpc.Server, maxStreamsPerConnection: number, log: LimitLog): void {
  const servers = (server as unknown as { http2Servers?: Map<http2.Http2Server | http2.Http2SecureServer, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  for (const h2 of servers.keys()) {
    watchConnectionStreams(h2, maxStreamsPerConnection, log, "grpc");
    h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      // Only the path is kept for the stream's life, not the whole header object (~1 KB a stream).
      const method = headers[":path"];
      // grpc-js ends such a call at once: with a trailers-only response (then "finish" follows it), or with
      // trailers after earlier messages (sent when the stream asks for them: "wantTrailers", then "close").
      let checked = false;
      const check = (): void => {
        const status = stream.sentTrailers ?? stream.sentHeaders;
        if (checked || status?.["grpc-status"] === undefined) return;
        checked = true;
        const message = decodeGrpcMessage(status["grpc-message"]);
        if (String(status["grpc-status"]) === "8" && /^Received message (larger|that decompresses to a size larger) than/.test(message)) {
          log.refused(
            "maxMessageBytes",
            { listener: "grpc", method, peer: stream.session?.socket?.remoteAddress },
            `request refused: ${message}`,
          );
        }
      };
      stream.on("finish", check);
      stream.on("close", check);
    });
  }
}

/**
 * Watches a request to the HTTP listener for a message larger than connect-node will read (it refuses it
 * with RESOURCE_EXHAUSTED): a declared Content-Length, a unary body as it is read, or one envelope of an
 * enveloped body (gRPC, gRPC-Web, Connect streams: a 5-byte prefix gives each message's length). It reads
 * nothing itself: it sees the chunks as connect-node reads them.
 */
export function watchRequestSize(
  request: http.IncomingMessage | http2.Http2ServerRequest,
  maxMessageBytes: number,
  log: LimitLog,
): void {
  let reported = false;
  const refuse = (bytes: number): void => {
    if (reported) return;
    reported = true;
    log.refused(
      "maxMessageBytes",
      { listener: "http", method: request.url, peer: request.socket?.remoteAddress, bytes, max: maxMessageBytes },
      "request refused: message larger than the limit",
    );
  };
  const enveloped = /^application\/(grpc|connect\+)/.test(request.headers["content-type"] ?? "");
  const declared = Number(request.headers["content-length"]);
  if (declared > maxMessageBytes + (enveloped ? 5 : 0)) {
    refuse(declared);
    return;
  }
  const measure = enveloped ? envelopeMeter(maxMessageBytes) : bodyMeter(maxMessageBytes);
  const onData = (chunk: Buffer): void => {
    const tooLarge = measure(chunk);
    if (tooLarge === undefined) return;
    request.off("data", onData);
    refuse(tooLarge);
  };
  // A "data" listener sees every chunk connect-node reads; pausing at once keeps the stream from flowing
  // before connect-node's reader is attached (nothing is read in between: no I/O runs in this turn).
  request.on("data", onData);
  request.pause();
}

/** Counts a unary body; returns its size once it passes `limit`. */
function bodyMeter(limit: number): (chunk: Buffer) => number | undefined {
  let total = 0;
  return (chunk) => {
    total += chunk.length;
    return total > limit ? total : undefined;
  };
}

/** Follows the 5-byte envelope prefixes; returns a message length over `limit` once one is announced. */
function envelopeMeter(limit: number): (chunk: Buffer) => number | undefined {
  const prefix = Buffer.alloc(5);
  let prefixBytes = 0;
  let payloadLeft = 0;
  return (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      if (payloadLeft > 0) {
        const skip = Math.min(payloadLeft, chunk.length - at);
        payloadLeft -= skip;
        at += skip;
        continue;
      }
      const take = Math.min(5 - prefixBytes, chunk.length - at);
      chunk.copy(prefix, prefixBytes, at, at + take);
      prefixBytes += take;
      at += take;
      if (prefixBytes < 5) continue;
      prefixBytes = 0;
      payloadLeft = prefix.readUInt32BE(1);
      if (payloadLeft > limit) return payloadLeft;
    }
    return undefined;
  };
}

/** connect-node's gzip and brotli, reporting a message that inflates past the limit (a zip bomb). */
export function sizeReportingCompressions(log: LimitLog): Compression[] {
  return [compressionGzip, compressionBrotli].map((compression): Compression => ({
    ...compression,
    async decompress(bytes, readMaxBytes) {
      try {
        return await compression.decompress(bytes, readMaxBytes);
      } catch (error) {
        if (error instanceof ConnectError && error.code === Code.ResourceExhausted) {
          log.refused(
            "maxMessageBytes",
            { listener: "http", encoding: compression.name, max: readMaxBytes },
            "request refused: message decompresses to more than the limit",
          );
        }
        throw error;
      }
    },
  }));
}

function decodeGrpcMessage(value: string | string[] | number | undefined): string {
  const text = Array.isArray(value) ? value.join(",") : String(value ?? "");
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
