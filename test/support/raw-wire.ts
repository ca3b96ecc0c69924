// Raw requests, below any RPC library, for tests that send what no well-behaved client would: gRPC frames
// written by hand over node:http2 (any bytes, flags, length prefixes, headers), and Connect requests as
// plain HTTP/1.1 (any body, any content type). Each returns what came back, status codes included.

import * as http from "node:http";
import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";

/** One gRPC length-prefixed message: flag byte, 4-byte big-endian length, payload. */
export function grpcFrame(payload: Uint8Array, options: { compressed?: number; length?: number } = {}): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(options.compressed ?? 0, 0);
  head.writeUInt32BE(options.length ?? payload.length, 1);
  return Buffer.concat([head, payload]);
}

export const gzip = (payload: Uint8Array): Buffer => gzipSync(payload);

export interface RawGrpcRequest {
  /** e.g. "/registry.v1.AgentRegistry/ListAgents". */
  readonly path: string;
  /** The request body as written, frames and all. */
  readonly body: Buffer;
  /** Extra or replacing request headers; a value of null removes a default header. */
  readonly headers?: Readonly<Record<string, string | null>>;
  /** Keep the request side open this long before ending it (default: end at once). */
  readonly holdOpenMs?: number;
}

export interface RawGrpcResult {
  readonly httpStatus: number;
  /** From the trailers, or from the headers of a trailers-only response; undefined if there was none. */
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
  /** Every response header and trailer, lower-case names. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The response body (frames). */
  readonly body: Buffer;
}

/** Sends one request on its own HTTP/2 connection to a gRPC listener and reads the whole response. */
export function rawGrpc(address: string, request: RawGrpcRequest, timeoutMs = 5000): Promise<RawGrpcResult> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on("error", reject);
    const headers: Record<string, string> = {
      ":method": "POST",
      ":path": request.path,
      "content-type": "application/grpc",
      te: "trailers",
    };
    for (const [name, value] of Object.entries(request.headers ?? {})) {
      if (value === null) delete headers[name];
      else headers[name] = value;
    }
    const stream = session.request(headers);
    const metadata: Record<string, string> = {};
    const chunks: Buffer[] = [];
    let httpStatus = 0;
    const take = (fields: http2.IncomingHttpHeaders): void => {
      for (const [name, value] of Object.entries(fields)) {
        if (value !== undefined) metadata[name] = Array.isArray(value) ? value.join(",") : String(value);
      }
    };
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      session.destroy();
      reject(new Error(`no complete response to ${request.path} within ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on("response", (fields) => {
      httpStatus = Number(fields[":status"]);
      take(fields);
    });
    stream.on("trailers", take);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => {}); // a reset after the response is reported by "close"
    stream.on("close", () => {
      clearTimeout(timer);
      session.close();
      const status = metadata["grpc-status"];
      resolve({
        httpStatus,
        grpcStatus: status === undefined ? undefined : Number(status),
        grpcMessage: decodeURIComponent(metadata["grpc-message"] ?? ""),
        metadata,
        body: Buffer.concat(chunks),
      });
    });
    stream.write(request.body);
    if (request.holdOpenMs === undefined) stream.end();
    else setTimeout(() => stream.end(), request.holdOpenMs);
  });
}

export interface RawHttpRequest {
  readonly method?: string;
  /** Path and query, e.g. "/registry.v1.AgentRegistry/Register". */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

export interface RawHttpResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body as JSON, or undefined if it is not JSON. */
  readonly json: { code?: string; message?: string } | undefined;
}

/** One HTTP/1.1 request (node:http, so any content type and any bytes go out as given). */
export function rawHttp(httpUrl: string, request: RawHttpRequest, timeoutMs = 5000): Promise<RawHttpResult> {
  return new Promise((resolve, reject) => {
    const body = request.body === undefined ? undefined : Buffer.from(request.body);
    const outgoing = http.request(
      `${httpUrl}${request.path}`,
      {
        method: request.method ?? "POST",
        headers: { ...(body === undefined ? {} : { "content-length": String(body.length) }), ...request.headers },
        agent: false,
        timeout: timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: RawHttpResult["json"];
          try {
            json = JSON.parse(text) as RawHttpResult["json"];
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
      },
    );
    outgoing.on("timeout", () => outgoing.destroy(new Error(`no response to ${request.path} within ${timeoutMs} ms`)));
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}
