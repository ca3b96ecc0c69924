// ListAgents in Connect's unary JSON (a POST of application/json: what curl and most internal services
// send), answered from the cache of encoded agents (list-encodings.ts) rather than through connect-node,
// whose JSON writer walks every field of every agent by reflection: most of the time of a full list of
// 10 000 agents. The call is otherwise as connect-node makes it: the same auth check, size limit, strict
// parse, status codes and error bodies. The answer is never compressed (Accept-Encoding allows, it does not
// ask). A request of any other shape (GET, a compressed body, another protocol version) goes to connect-node.

import { fromJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes, parseContentType, parseTimeout } from "@connectrpc/connect/protocol-connect";
import { ListAgentsRequestSchema } from "../../gen/registry/v1/registry_pb.js";
import type { Log } from "../common/log.js";
import type { Authorizer, Caller } from "./authorizer.js";
import { requestClientCertificate } from "./connect-auth.js";
import type { Disclosure } from "./disclosure.js";
import { toConnectError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import type { RegistryHandlers } from "./registry-handlers.js";
import { HTTP_JSON_OPTIONS } from "./wire.js";

type NodeHandler = ReturnType<typeof import("@connectrpc/connect-node").connectNodeAdapter>;
type NodeRequest = Parameters<NodeHandler>[0];
type NodeResponse = Parameters<NodeHandler>[1];

/** Answers the request and returns true, or returns false (before reading anything) to leave it to connect-node. */
export type FastPath = (request: NodeRequest, response: NodeResponse) => boolean;

export interface ConnectJsonListOptions {
  readonly handlers: RegistryHandlers;
  readonly authorizer: Authorizer;
  readonly log: Log;
  readonly metrics: ServerMetrics;
  readonly disclosure: Disclosure;
  /** The largest request body, as connect-node's readMaxBytes. */
  readonly readMaxBytes: number;
}

export function connectJsonList(options: ConnectJsonListOptions): FastPath {
  return (request, response) => {
    if (request.method !== "POST") return false;
    const type = parseContentType(headerValue(request.headers["content-type"]));
    if (type === undefined || type.binary || type.stream) return false;
    const encoding = request.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const version = request.headers["connect-protocol-version"];
    if (version !== undefined && version !== "1") return false;
    void answer(request, response, options);
    return true;
  };
}

async function answer(request: NodeRequest, response: NodeResponse, options: ConnectJsonListOptions): Promise<void> {
  const { handlers, authorizer, log, metrics, disclosure } = options;
  const started = performance.now();
  let caller: Caller | undefined;
  let code: Code | 0 = 0;
  try {
    // As connect-node: a bad timeout is refused first, the body is read and parsed, then the caller is
    // authorized. A good timeout needs no timer: the answer is made at once, without waiting on anything.
    const timeout = parseTimeout(headerValue(request.headers["connect-timeout-ms"]), Number.MAX_SAFE_INTEGER);
    if (timeout.error !== undefined) throw timeout.error;
    const body = await readBody(request, options.readMaxBytes);
    const message = parseRequest(body);
    const authorization = request.headers.authorization;
    caller = authorizer.authorize("ListAgents", { authorization, clientCertificate: requestClientCertificate(request) });
    send(response, 200, {}, await handlers.listAgentsJson(message));
  } catch (error) {
    const connectError = toConnectError(error, log, disclosure.toCaller(caller));
    code = connectError.code;
    const headers: Record<string, string> = {};
    connectError.metadata.forEach((value, key) => (headers[key] = value));
    send(response, codeToHttpStatus(connectError.code), headers, errorToJsonBytes(connectError, {}));
  } finally {
    metrics.rpc("ListAgents", "http", code, (performance.now() - started) / 1000);
  }
}

function headerValue(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}

function parseRequest(body: Buffer): ReturnType<typeof fromJsonString<typeof ListAgentsRequestSchema>> {
  try {
    return fromJsonString(ListAgentsRequestSchema, body.toString("utf8"), HTTP_JSON_OPTIONS);
  } catch (error) {
    throw ConnectError.from(error, Code.InvalidArgument);
  }
}

function readBody(request: NodeRequest, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= maxBytes) chunks.push(chunk);
    });
    request.on("end", () => {
      if (bytes > maxBytes) {
        reject(new ConnectError(`the request message is ${bytes} bytes, more than the ${maxBytes} allowed (REGISTRY_MAX_MESSAGE_BYTES)`, Code.ResourceExhausted));
      } else resolve(Buffer.concat(chunks, bytes));
    });
    request.on("error", reject);
    // The request may have been paused for a size meter that reads along (transport-refusals.ts).
    request.resume();
  });
}

function send(response: NodeResponse, status: number, headers: Record<string, string>, body: Uint8Array): void {
  if (response.destroyed) return;
  response.writeHead(status, { ...headers, "content-type": "application/json", "content-length": String(body.byteLength) });
  response.end(body);
}
