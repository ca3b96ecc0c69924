// Hostile and broken input against a real server, below any RPC library: hand-written gRPC frames over
// node:http2 to the gRPC port, and raw HTTP/1.1 requests in the Connect protocol to the HTTP port. Each
// case checks the exact status (gRPC's grpc-status; Connect's HTTP status and JSON code), that a good
// request succeeds right after it (the server keeps serving), and that the registry file is byte for byte
// what it was (nothing bad was written). The expected answer of every case is in the tables below.

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create, toBinary } from "@bufbuild/protobuf";
import { status as Status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DeregisterRequestSchema,
  GetAgentRequestSchema,
  HeartbeatRequestSchema,
  ListAgentsRequestSchema,
  RegisterRequestSchema,
  WatchAgentsRequestSchema,
} from "../../gen/registry/v1/registry_pb.js";
import { DEFAULT_LIMITS } from "../../src/config/index.js";
import { grpcClient } from "../support/clients.js";
import { grpcFrame, gzip, rawGrpc, rawHttp } from "../support/raw-wire.js";
import { onDisk } from "../support/stored-agents.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

/** Small enough that the oversized cases send kilobytes, not megabytes. */
const MAX_MESSAGE_BYTES = 65_536;
const SEED_ID = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";
const UNKNOWN_ID = "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48";

const SERVICE = "/registry.v1.AgentRegistry";
const REGISTER = `${SERVICE}/Register`;
const LIST = `${SERVICE}/ListAgents`;
const GET = `${SERVICE}/GetAgent`;
const DEREGISTER = `${SERVICE}/Deregister`;
const HEARTBEAT = `${SERVICE}/Heartbeat`;
const WATCH = `${SERVICE}/WatchAgents`;

// ---------------------------------------------------------------------------------------------------
// Building blocks of the gRPC cases.

const register = (init: Parameters<typeof create<typeof RegisterRequestSchema>>[1]): Buffer =>
  grpcFrame(toBinary(RegisterRequestSchema, create(RegisterRequestSchema, init)));
const list = (init: Parameters<typeof create<typeof ListAgentsRequestSchema>>[1] = {}): Buffer =>
  grpcFrame(toBinary(ListAgentsRequestSchema, create(ListAgentsRequestSchema, init)));
const bytes = (...values: number[]): Buffer => Buffer.from(values);
/** A RegisterRequest whose hostname (field 2) holds exactly these bytes, valid UTF-8 or not. */
const hostnameBytes = (raw: Buffer): Buffer => Buffer.concat([bytes(0x12, raw.length), raw]);
const manyLabels = (count: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, "v"]));
const validList = toBinary(ListAgentsRequestSchema, create(ListAgentsRequestSchema, {}));
/** A GPU (wire shape) with `change` applied, and a model likewise. */
const gpu = (change: object = {}) => ({ index: 0, uuid: "GPU-5f0e", name: "NVIDIA A100-SXM4-80GB", memoryTotalBytes: 85_899_345_920n, ...change });
const model = (change: object = {}) => ({ name: "llama3.1:8b", digest: "sha256:46e0", sizeBytes: 4_920_753_328n, ...change });
const withInventory = (inventory: { gpus?: object[]; models?: object[] }): Buffer => register({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory });
/** The same as Connect JSON (uint64 as strings, as protobuf JSON writes them). */
const jsonGpu = (change: object = {}) => ({ index: 0, uuid: "GPU-5f0e", name: "NVIDIA A100-SXM4-80GB", memoryTotalBytes: "85899345920", ...change });
const jsonModel = (change: object = {}) => ({ name: "llama3.1:8b", digest: "sha256:46e0", sizeBytes: "4920753328", ...change });

interface GrpcCase {
  readonly what: string;
  readonly path: string;
  readonly body: Buffer;
  readonly headers?: Readonly<Record<string, string | null>>;
  /** The grpc-status expected; undefined: none at all (an HTTP-level refusal, see `http`). */
  readonly code: Status | undefined;
  /** The HTTP status expected (200 for every answer in gRPC's own terms). */
  readonly http?: number;
  /** Something the grpc-message must contain, where the message is ours to choose. */
  readonly message?: RegExp;
}

// The gRPC port (grpc-js). Malformed protobuf is INVALID_ARGUMENT naming the message type (grpc-js alone
// would say INTERNAL). Framing, compression and content-type problems are answered by grpc-js itself, with
// its own codes: a decompression failure is INTERNAL, an unknown encoding UNIMPLEMENTED, a missing or
// second unary message UNIMPLEMENTED, a non-gRPC content type a bare HTTP 415. A set compression flag
// without a grpc-encoding header is read as uncompressed (grpc-js is lenient there), so those cases pass.
const GRPC_CASES: readonly GrpcCase[] = [
  // Malformed protobuf.
  { what: "a lone 0xff byte as a ListAgentsRequest", path: LIST, body: grpcFrame(bytes(0xff)), code: Status.INVALID_ARGUMENT, message: /registry\.v1\.ListAgentsRequest.*premature EOF/ },
  { what: "a truncated varint in a RegisterRequest", path: REGISTER, body: grpcFrame(bytes(0x20, 0x80)), code: Status.INVALID_ARGUMENT, message: /registry\.v1\.RegisterRequest/ },
  { what: "wire type 7 (no such type) in a GetAgentRequest", path: GET, body: grpcFrame(bytes(0x0f)), code: Status.INVALID_ARGUMENT, message: /registry\.v1\.GetAgentRequest.*wire type 7/ },
  { what: "field number 0 in a DeregisterRequest", path: DEREGISTER, body: grpcFrame(bytes(0x00, 0x01)), code: Status.INVALID_ARGUMENT, message: /registry\.v1\.DeregisterRequest.*field no 0/ },
  { what: "a string length running past the end", path: REGISTER, body: grpcFrame(bytes(0x12, 0x10, 0x61)), code: Status.INVALID_ARGUMENT, message: /RegisterRequest/ },
  { what: "an 11-byte varint", path: REGISTER, body: grpcFrame(bytes(0x20, ...Array<number>(10).fill(0xff), 0x01)), code: Status.INVALID_ARGUMENT, message: /invalid varint/ },
  { what: "a group start tag (wire type 3) with no end", path: LIST, body: grpcFrame(bytes(0x0b)), code: Status.INVALID_ARGUMENT, message: /ListAgentsRequest/ },
  { what: "a hostname that is not valid UTF-8", path: REGISTER, body: grpcFrame(hostnameBytes(bytes(0xc3, 0x28))), code: Status.INVALID_ARGUMENT, message: /RegisterRequest.*utf-8/i },
  { what: "a hostname holding a UTF-8-encoded lone surrogate", path: REGISTER, body: grpcFrame(hostnameBytes(bytes(0xed, 0xa0, 0x80))), code: Status.INVALID_ARGUMENT, message: /RegisterRequest/ },
  { what: "a malformed WatchAgentsRequest", path: WATCH, body: grpcFrame(bytes(0xff)), code: Status.INVALID_ARGUMENT, message: /registry\.v1\.WatchAgentsRequest/ },
  { what: "a malformed first HeartbeatRequest", path: HEARTBEAT, body: grpcFrame(bytes(0x0f)), code: Status.INVALID_ARGUMENT, message: /registry\.v1\.HeartbeatRequest/ },
  // Well-formed protobuf, values the rules refuse.
  { what: "an emoji hostname", path: REGISTER, body: register({ hostname: "gpu-😀" }), code: Status.INVALID_ARGUMENT, message: /^hostname:/ },
  { what: "a NUL byte in the hostname", path: REGISTER, body: register({ hostname: "gpu\u00001" }), code: Status.INVALID_ARGUMENT, message: /^hostname:/ },
  { what: "a NUL byte in a label value", path: REGISTER, body: register({ hostname: "gpu-1", labels: { gpu: "a\u0000100" } }), code: Status.INVALID_ARGUMENT, message: /^labels:/ },
  { what: "a right-to-left override in the hostname", path: REGISTER, body: register({ hostname: "gpu-\u202e1" }), code: Status.INVALID_ARGUMENT, message: /^hostname:/ },
  { what: "a 254-character hostname", path: REGISTER, body: register({ hostname: "a".repeat(254) }), code: Status.INVALID_ARGUMENT, message: /^hostname: must be at most 253/ },
  { what: "65 labels", path: REGISTER, body: register({ hostname: "gpu-1", labels: manyLabels(65) }), code: Status.INVALID_ARGUMENT, message: /at most 64 labels/ },
  { what: "a 64-character label key", path: REGISTER, body: register({ hostname: "gpu-1", labels: { ["k".repeat(64)]: "v" } }), code: Status.INVALID_ARGUMENT, message: /^labels: key/ },
  { what: "a 256-character label value", path: REGISTER, body: register({ hostname: "gpu-1", labels: { gpu: "v".repeat(256) } }), code: Status.INVALID_ARGUMENT, message: /^labels: value/ },
  { what: "port 70000", path: REGISTER, body: register({ hostname: "gpu-1", port: 70_000 }), code: Status.INVALID_ARGUMENT, message: /^port:/ },
  { what: "a non-UUID agent_id", path: GET, body: grpcFrame(toBinary(GetAgentRequestSchema, create(GetAgentRequestSchema, { agentId: "gpu-1" }))), code: Status.INVALID_ARGUMENT, message: /^agent_id:/ },
  { what: "status enum number 7 (no such status)", path: LIST, body: grpcFrame(bytes(0x08, 0x07)), code: Status.INVALID_ARGUMENT, message: /^status:/ },
  { what: "a negative page_size", path: LIST, body: list({ pageSize: -1 }), code: Status.INVALID_ARGUMENT, message: /^page_size:/ },
  { what: "a page_token this server never issued", path: LIST, body: list({ pageToken: "not-a-token" }), code: Status.INVALID_ARGUMENT, message: /^page_token:/ },
  { what: "a first beat without agent_id", path: HEARTBEAT, body: grpcFrame(toBinary(HeartbeatRequestSchema, create(HeartbeatRequestSchema, { seq: 1n }))), code: Status.INVALID_ARGUMENT, message: /^agent_id: is required/ },
  { what: "a beat for an unknown agent", path: HEARTBEAT, body: grpcFrame(toBinary(HeartbeatRequestSchema, create(HeartbeatRequestSchema, { agentId: UNKNOWN_ID, seq: 1n }))), code: Status.NOT_FOUND, message: new RegExp(UNKNOWN_ID) },
  { what: "Deregister of an unknown agent", path: DEREGISTER, body: grpcFrame(toBinary(DeregisterRequestSchema, create(DeregisterRequestSchema, { agentId: UNKNOWN_ID }))), code: Status.NOT_FOUND },
  { what: "a watch with a malformed label selector", path: WATCH, body: grpcFrame(toBinary(WatchAgentsRequestSchema, create(WatchAgentsRequestSchema, { labelSelector: "gpu" }))), code: Status.INVALID_ARGUMENT, message: /^label_selector:/ },
  // Framing.
  { what: "a length prefix of 4 GiB - 1", path: LIST, body: grpcFrame(bytes(), { length: 0xffff_ffff }), code: Status.RESOURCE_EXHAUSTED, message: /larger than max/ },
  { what: "a message one byte over the limit", path: REGISTER, body: grpcFrame(Buffer.alloc(MAX_MESSAGE_BYTES + 1)), code: Status.RESOURCE_EXHAUSTED, message: /larger than max/ },
  { what: "a frame cut short (prefix says 10 bytes, 3 follow)", path: LIST, body: grpcFrame(bytes(0x08, 0x01, 0x12), { length: 10 }), code: Status.UNIMPLEMENTED, message: /no request message/ },
  { what: "half a length prefix", path: LIST, body: bytes(0x00, 0x00), code: Status.UNIMPLEMENTED, message: /no request message/ },
  { what: "no message at all on a unary call", path: REGISTER, body: bytes(), code: Status.UNIMPLEMENTED, message: /no request message/ },
  { what: "two messages on a unary call", path: LIST, body: Buffer.concat([list(), list()]), code: Status.UNIMPLEMENTED, message: /second request message/ },
  { what: "a lone 0xff byte on the reflection stream", path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", body: grpcFrame(bytes(0xff)), code: Status.INVALID_ARGUMENT, message: /^the request is not a valid grpc\.reflection\.v1\.ServerReflectionRequest in protobuf binary: / },
  // Compression.
  { what: "the compression flag with gzip named but plain bytes sent", path: LIST, body: grpcFrame(bytes(0x08, 0x01), { compressed: 1 }), headers: { "grpc-encoding": "gzip" }, code: Status.INTERNAL, message: /decompress/ },
  { what: "an encoding the server does not know", path: LIST, body: grpcFrame(validList, { compressed: 1 }), headers: { "grpc-encoding": "snappy" }, code: Status.UNIMPLEMENTED, message: /snappy/ },
  { what: "a gzip bomb (10 MB of zeros in a few KB)", path: REGISTER, body: grpcFrame(gzip(Buffer.alloc(10_000_000)), { compressed: 1 }), headers: { "grpc-encoding": "gzip" }, code: Status.RESOURCE_EXHAUSTED, message: /decompresses to a size larger than/ },
  { what: "the compression flag without grpc-encoding (read as uncompressed)", path: LIST, body: grpcFrame(validList, { compressed: 1 }), code: Status.OK },
  { what: "compression flag 2 (undefined; read as uncompressed)", path: LIST, body: grpcFrame(validList, { compressed: 2 }), code: Status.OK },
  // Headers and paths.
  { what: "content-type application/json", path: LIST, body: list(), headers: { "content-type": "application/json" }, code: undefined, http: 415 },
  { what: "no content-type", path: LIST, body: list(), headers: { "content-type": null }, code: undefined, http: 415 },
  { what: "an unknown method", path: `${SERVICE}/Explode`, body: list(), code: Status.UNIMPLEMENTED },
  { what: "an unknown service", path: "/registry.v2.AgentRegistry/ListAgents", body: list(), code: Status.UNIMPLEMENTED },
  // Inventories past the limits (issue 14).
  { what: "65 GPUs", path: REGISTER, body: withInventory({ gpus: Array.from({ length: 65 }, (_, index) => gpu({ index })) }), code: Status.INVALID_ARGUMENT, message: /^inventory\.gpus: at most 64 GPUs per node, got 65$/ },
  { what: "1 025 models", path: REGISTER, body: withInventory({ models: Array.from({ length: 1025 }, (_, i) => model({ name: `m${i}` })) }), code: Status.INVALID_ARGUMENT, message: /^inventory\.models: at most 1024 models per node, got 1025$/ },
  { what: "a 257-byte GPU name", path: REGISTER, body: withInventory({ gpus: [gpu(), gpu({ name: "g".repeat(257) })] }), code: Status.INVALID_ARGUMENT, message: /^inventory\.gpus\[1\]\.name: must be at most 256 bytes, got 257$/ },
  { what: "utilisation of 101%", path: REGISTER, body: withInventory({ gpus: [gpu(), gpu(), gpu(), gpu({ utilizationPercent: 101 })] }), code: Status.INVALID_ARGUMENT, message: /^inventory\.gpus\[3\]\.utilization_percent: / },
  { what: "a temperature of -273 °C", path: REGISTER, body: withInventory({ gpus: [gpu({ temperatureCelsius: -273 })] }), code: Status.INVALID_ARGUMENT, message: /^inventory\.gpus\[0\]\.temperature_celsius: / },
  { what: "2^63 bytes of GPU memory", path: REGISTER, body: withInventory({ gpus: [gpu({ memoryTotalBytes: 2n ** 63n })] }), code: Status.INVALID_ARGUMENT, message: /^inventory\.gpus\[0\]\.memory_total_bytes: / },
  { what: "a model without a name", path: REGISTER, body: withInventory({ models: [model(), model({ name: "" })] }), code: Status.INVALID_ARGUMENT, message: /^inventory\.models\[1\]\.name: is required$/ },
  { what: "a 2 PiB model", path: REGISTER, body: withInventory({ models: [model({ sizeBytes: 2n ** 51n })] }), code: Status.INVALID_ARGUMENT, message: /^inventory\.models\[0\]\.size_bytes: / },
  { what: "a NUL in a model's digest", path: REGISTER, body: withInventory({ models: [model({ digest: "sha256:\u0000" })] }), code: Status.INVALID_ARGUMENT, message: /^inventory\.models\[0\]\.digest: must be printable/ },
  { what: "a 300-byte loaded_model filter", path: LIST, body: list({ loadedModel: "m".repeat(300) }), code: Status.INVALID_ARGUMENT, message: /^loaded_model: / },
  { what: "a malformed grpc-timeout", path: LIST, body: list(), headers: { "grpc-timeout": "soon" }, code: Status.INTERNAL, message: /grpc-timeout/ },
];

interface ConnectCase {
  readonly what: string;
  readonly path: string;
  readonly body?: string | Buffer;
  /** Default application/json. */
  readonly contentType?: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly http: number;
  /** The Connect error code expected in the JSON body; undefined: no Connect error body at all. */
  readonly code: string | undefined;
  readonly message?: RegExp;
}

const json = (value: unknown): string => JSON.stringify(value);

// The HTTP port (connect-node), Connect protocol over HTTP/1.1. JSON is strict: unknown fields and enum
// names are INVALID_ARGUMENT. connect-node answers malformed *binary* with INTERNAL ("parse binary"), and
// an unsupported content type with a bare 415: its own choices, kept (and pinned here).
const CONNECT_CASES: readonly ConnectCase[] = [
  // Malformed JSON.
  { what: "JSON cut short", path: REGISTER, body: '{"hostname":"gpu-1"', http: 400, code: "invalid_argument" },
  { what: "not JSON at all", path: REGISTER, body: "hostname=gpu-1", http: 400, code: "invalid_argument" },
  { what: "a JSON array for a message", path: REGISTER, body: "[]", http: 400, code: "invalid_argument" },
  { what: "a JSON string for a message", path: LIST, body: '"ListAgents"', http: 400, code: "invalid_argument" },
  { what: "an empty body", path: REGISTER, body: "", http: 400, code: "invalid_argument" },
  { what: "10 000 nested arrays", path: LIST, body: "[".repeat(10_000) + "]".repeat(10_000), http: 400, code: "invalid_argument" },
  { what: "bytes that are not UTF-8 in a string", path: REGISTER, body: Buffer.concat([Buffer.from('{"hostname":"gpu-'), bytes(0xff, 0xfe), Buffer.from('"}')]), http: 400, code: "invalid_argument", message: /^hostname:/ },
  // Wrong types.
  { what: "a number for hostname", path: REGISTER, body: json({ hostname: 7 }), http: 400, code: "invalid_argument" },
  { what: "a word for port", path: REGISTER, body: json({ hostname: "gpu-1", port: "eleven" }), http: 400, code: "invalid_argument" },
  { what: "a negative port", path: REGISTER, body: json({ hostname: "gpu-1", port: -1 }), http: 400, code: "invalid_argument" },
  { what: "a fractional port", path: REGISTER, body: json({ hostname: "gpu-1", port: 1.5 }), http: 400, code: "invalid_argument" },
  { what: "a port of 1e400 (Infinity)", path: REGISTER, body: '{"hostname":"gpu-1","port":1e400}', http: 400, code: "invalid_argument" },
  { what: "labels as an array", path: REGISTER, body: json({ hostname: "gpu-1", labels: ["gpu=a100"] }), http: 400, code: "invalid_argument" },
  { what: "a number as a label value", path: REGISTER, body: json({ hostname: "gpu-1", labels: { gpu: 100 } }), http: 400, code: "invalid_argument" },
  { what: "null labels", path: REGISTER, body: json({ hostname: "gpu-1", labels: { gpu: null } }), http: 400, code: "invalid_argument" },
  { what: "a word for page_size", path: LIST, body: json({ pageSize: "all" }), http: 400, code: "invalid_argument" },
  // Unknown names.
  { what: "an unknown field", path: REGISTER, body: json({ hostname: "gpu-1", gpuCount: 8 }), http: 400, code: "invalid_argument", message: /gpuCount/ },
  { what: "an unknown enum name", path: LIST, body: json({ status: "AGENT_STATUS_SLEEPING" }), http: 400, code: "invalid_argument", message: /AGENT_STATUS_SLEEPING/ },
  { what: "an enum number with no name", path: LIST, body: json({ status: 7 }), http: 400, code: "invalid_argument", message: /^status:/ },
  // Sizes.
  { what: "a 10 000-character hostname", path: REGISTER, body: json({ hostname: "a".repeat(10_000) }), http: 400, code: "invalid_argument", message: /^hostname: must be at most 253 characters, got 10000/ },
  { what: "a 1 000-character label value", path: REGISTER, body: json({ hostname: "gpu-1", labels: { gpu: "v".repeat(1000) } }), http: 400, code: "invalid_argument", message: /^labels: value/ },
  { what: "65 labels", path: REGISTER, body: json({ hostname: "gpu-1", labels: manyLabels(65) }), http: 400, code: "invalid_argument", message: /at most 64 labels/ },
  { what: "a body one byte over the message limit", path: REGISTER, body: json({ hostname: "a".repeat(MAX_MESSAGE_BYTES) }).slice(0, MAX_MESSAGE_BYTES + 1), http: 429, code: "resource_exhausted", message: /readMaxBytes/ },
  // Unicode edge cases.
  { what: "an emoji hostname", path: REGISTER, body: json({ hostname: "gpu-😀" }), http: 400, code: "invalid_argument", message: /^hostname:/ },
  { what: "a lone surrogate in a label value", path: REGISTER, body: '{"hostname":"gpu-1","labels":{"gpu":"a\\ud800"}}', http: 400, code: "invalid_argument", message: /RegisterRequest\.labels.*invalid UTF8/ },
  { what: "a lone surrogate in ollama_version", path: REGISTER, body: '{"hostname":"gpu-1","ollamaVersion":"0.5\\udfff"}', http: 400, code: "invalid_argument", message: /RegisterRequest\.ollama_version.*invalid UTF8/ },
  { what: "a right-to-left override in the hostname", path: REGISTER, body: json({ hostname: "gpu-\u202e1" }), http: 400, code: "invalid_argument", message: /^hostname:/ },
  { what: "a zero-width space in a label key", path: REGISTER, body: json({ hostname: "gpu-1", labels: { "g\u200bpu": "a100" } }), http: 400, code: "invalid_argument", message: /^labels: key/ },
  { what: "a zero-width joiner in the hostname", path: REGISTER, body: json({ hostname: "gpu\u200d1" }), http: 400, code: "invalid_argument", message: /^hostname:/ },
  { what: "an Arabic (right-to-left) hostname", path: REGISTER, body: json({ hostname: "خادم-١" }), http: 400, code: "invalid_argument", message: /^hostname:/ },
  // NUL bytes.
  { what: "a NUL in the hostname", path: REGISTER, body: json({ hostname: "gpu\u00001" }), http: 400, code: "invalid_argument", message: /^hostname:/ },
  { what: "a NUL in a label value", path: REGISTER, body: json({ hostname: "gpu-1", labels: { gpu: "a\u0000" } }), http: 400, code: "invalid_argument", message: /^labels: value/ },
  { what: "a NUL in ollama_version", path: REGISTER, body: json({ hostname: "gpu-1", ollamaVersion: "0.5\u00007" }), http: 400, code: "invalid_argument", message: /^ollama_version:/ },
  { what: "a NUL in an agent_id", path: GET, body: json({ agentId: `${SEED_ID}\u0000` }), http: 400, code: "invalid_argument", message: /^agent_id:/ },
  // Other values the rules refuse.
  { what: "a non-UUID agent_id on Deregister", path: DEREGISTER, body: json({ agentId: "gpu-1" }), http: 400, code: "invalid_argument", message: /^agent_id:/ },
  { what: "Deregister of an unknown agent", path: DEREGISTER, body: json({ agentId: UNKNOWN_ID }), http: 404, code: "not_found", message: new RegExp(UNKNOWN_ID) },
  { what: "a malformed label selector", path: LIST, body: json({ labelSelector: "gpu" }), http: 400, code: "invalid_argument", message: /^label_selector:/ },
  // Inventories past the limits (issue 14).
  { what: "65 GPUs", path: REGISTER, body: json({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory: { gpus: Array.from({ length: 65 }, (_, index) => jsonGpu({ index })) } }), http: 400, code: "invalid_argument", message: /^inventory\.gpus: at most 64 GPUs per node, got 65$/ },
  { what: "1 025 models", path: REGISTER, body: json({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory: { models: Array.from({ length: 1025 }, (_, i) => ({ name: `m${i}` })) } }), http: 400, code: "invalid_argument", message: /^inventory\.models: at most 1024 models per node, got 1025$/ },
  { what: "a 257-byte model name", path: REGISTER, body: json({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory: { models: [jsonModel({ name: "é".repeat(128) + "x" })] } }), http: 400, code: "invalid_argument", message: /^inventory\.models\[0\]\.name: must be at most 256 bytes, got 257$/ },
  { what: "a negative temperature below -50", path: REGISTER, body: json({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory: { gpus: [jsonGpu({ temperatureCelsius: -51 })] } }), http: 400, code: "invalid_argument", message: /^inventory\.gpus\[0\]\.temperature_celsius: / },
  { what: "a negative size (not a uint64)", path: REGISTER, body: json({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory: { models: [jsonModel({ sizeBytes: "-1" })] } }), http: 400, code: "invalid_argument" },
  { what: "GPU memory of 2^60 bytes", path: REGISTER, body: json({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory: { gpus: [jsonGpu({ memoryUsedBytes: String(2n ** 60n) })] } }), http: 400, code: "invalid_argument", message: /^inventory\.gpus\[0\]\.memory_used_bytes: / },
  { what: "utilisation of 250%", path: REGISTER, body: json({ hostname: "gpu-1", ipAddress: "10.0.0.9", inventory: { gpus: [jsonGpu(), jsonGpu({ utilizationPercent: 250 })] } }), http: 400, code: "invalid_argument", message: /^inventory\.gpus\[1\]\.utilization_percent: / },
  { what: "a 300-byte model filter", path: LIST, body: json({ model: "m".repeat(300) }), http: 400, code: "invalid_argument", message: /^model: / },
  // Content types, encodings, methods, paths.
  { what: "content-type text/plain", path: REGISTER, body: json({ hostname: "gpu-1" }), contentType: "text/plain", http: 415, code: undefined },
  { what: "malformed protobuf binary (connect-node: INTERNAL)", path: LIST, body: bytes(0xff), contentType: "application/proto", http: 500, code: "internal", message: /parse binary/ },
  { what: "gzip named but plain JSON sent", path: REGISTER, body: json({ hostname: "gpu-1" }), headers: { "content-encoding": "gzip" }, http: 400, code: "invalid_argument" },
  { what: "a content-encoding the server does not know", path: REGISTER, body: json({ hostname: "gpu-1" }), headers: { "content-encoding": "snappy" }, http: 501, code: "unimplemented" },
  { what: "a gzip bomb (10 MB of spaces in a few KB)", path: LIST, body: gzip(Buffer.alloc(10_000_000, " ")), headers: { "content-encoding": "gzip" }, http: 429, code: "resource_exhausted" },
  { what: "a malformed connect-timeout-ms", path: LIST, body: "{}", headers: { "connect-timeout-ms": "soon" }, http: 400, code: "invalid_argument" },
  { what: "GET on Register (it has side effects)", path: `${REGISTER}?encoding=json&message=%7B%7D`, method: "GET", http: 405, code: undefined },
  { what: "an unknown method", path: `${SERVICE}/Explode`, body: "{}", http: 404, code: undefined },
];

// ---------------------------------------------------------------------------------------------------

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ limits: { ...DEFAULT_LIMITS, maxMessageBytes: MAX_MESSAGE_BYTES } });
  const client = grpcClient(server.grpcAddress);
  await client.register({ agentId: SEED_ID, hostname: "seed-node", ipAddress: "10.0.0.7", labels: { gpu: "a100" } });
  client.close();
});

afterAll(async () => {
  await server.dispose();
});

it("has at least 50 cases over the two transports", () => {
  expect(GRPC_CASES.length + CONNECT_CASES.length).toBeGreaterThanOrEqual(50);
});

describe("over gRPC (raw HTTP/2 frames to the gRPC port)", () => {
  it.each(GRPC_CASES)("$what: grpc-status $code", async (testCase) => {
    const before = await onDisk(server.dataDir);

    const result = await rawGrpc(server.grpcAddress, { path: testCase.path, body: testCase.body, headers: testCase.headers ?? {} });

    expect({ http: result.httpStatus, grpcStatus: result.grpcStatus }).toEqual({ http: testCase.http ?? 200, grpcStatus: testCase.code });
    if (testCase.message !== undefined) expect(result.grpcMessage).toMatch(testCase.message);
    const after = await rawGrpc(server.grpcAddress, { path: LIST, body: list() });
    expect(after.grpcStatus).toBe(Status.OK);
    expect(after.body.includes("seed-node")).toBe(true);
    expect(await onDisk(server.dataDir)).toEqual(before);
  });
});

describe("over Connect (raw HTTP/1.1 to the HTTP port)", () => {
  it.each(CONNECT_CASES)("$what: HTTP $http, $code", async (testCase) => {
    const before = await onDisk(server.dataDir);

    const result = await rawHttp(server.httpUrl, {
      method: testCase.method ?? "POST",
      path: testCase.path,
      headers: { "content-type": testCase.contentType ?? "application/json", ...testCase.headers },
      ...(testCase.body === undefined ? {} : { body: testCase.body }),
    });

    expect({ http: result.status, code: result.json?.code }).toEqual({ http: testCase.http, code: testCase.code });
    if (testCase.message !== undefined) expect(result.json?.message).toMatch(testCase.message);
    const after = await rawHttp(server.httpUrl, { path: LIST, headers: { "content-type": "application/json" }, body: "{}" });
    expect(after.status).toBe(200);
    expect(after.text).toContain('"hostname":"seed-node"');
    expect(await onDisk(server.dataDir)).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------------
// Absurd requests: huge or countless headers, a 10 MB body, deep nesting and bytes that are not UTF-8 in
// every kind of string, over both transports. Each gets its precise status, the server serves on, and
// its heap (after a full collection) is back within 10% of what it was before them all.

/** A full garbage collection: `--expose-gc` turned on at run time, its `gc` taken from a fresh context. */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** A RegisterRequest in protobuf binary with these raw bytes as field `field` (wire type 2), after a good hostname. */
function registerWithRawField(field: number, raw: Buffer): Buffer {
  const good = toBinary(RegisterRequestSchema, create(RegisterRequestSchema, { hostname: "gpu-1" }));
  return Buffer.concat([good, bytes((field << 3) | 2, raw.length), raw]);
}

/** A labels map entry (field 6: key 1, value 2) with raw bytes. */
function labelEntry(key: Buffer, value: Buffer): Buffer {
  const entry = Buffer.concat([bytes(0x0a, key.length), key, bytes(0x12, value.length), value]);
  return Buffer.concat([bytes(0x32, entry.length), entry]);
}

const NOT_UTF8 = bytes(0xc3, 0x28);
const deep = (levels: number): string => "[".repeat(levels) + "]".repeat(levels);

const ABSURD_GRPC_CASES: readonly GrpcCase[] = [
  { what: "an ollama_version that is not UTF-8", path: REGISTER, body: grpcFrame(registerWithRawField(5, NOT_UTF8)), code: Status.INVALID_ARGUMENT, message: /RegisterRequest.*utf-8/i },
  { what: "a label key that is not UTF-8", path: REGISTER, body: grpcFrame(Buffer.concat([registerWithRawField(5, Buffer.from("0.5.7")), labelEntry(NOT_UTF8, Buffer.from("a100"))])), code: Status.INVALID_ARGUMENT, message: /RegisterRequest.*utf-8/i },
  { what: "a label value that is not UTF-8", path: REGISTER, body: grpcFrame(Buffer.concat([registerWithRawField(5, Buffer.from("0.5.7")), labelEntry(Buffer.from("gpu"), NOT_UTF8)])), code: Status.INVALID_ARGUMENT, message: /RegisterRequest.*utf-8/i },
  { what: "an agent_id that is not UTF-8", path: GET, body: grpcFrame(Buffer.concat([bytes(0x0a, NOT_UTF8.length), NOT_UTF8])), code: Status.INVALID_ARGUMENT, message: /GetAgentRequest.*utf-8/i },
  { what: "a label_selector that is not UTF-8", path: LIST, body: grpcFrame(Buffer.concat([bytes(0x12, NOT_UTF8.length), NOT_UTF8])), code: Status.INVALID_ARGUMENT, message: /ListAgentsRequest.*utf-8/i },
];

const ABSURD_CONNECT_CASES: readonly ConnectCase[] = [
  { what: "a 64 KB header", path: LIST, body: "{}", headers: { "x-padding": "p".repeat(65_536) }, http: 431, code: undefined },
  { what: "1 000 headers", path: LIST, body: "{}", headers: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x-h${i}`, "v"])), http: 431, code: undefined },
  { what: "a 10 MB JSON body", path: REGISTER, body: json({ hostname: "gpu-1", labels: { pad: "p".repeat(10_000_000) } }), http: 429, code: "resource_exhausted", message: /readMaxBytes/ },
  { what: "10 000 nested arrays in a label value", path: REGISTER, body: `{"hostname":"gpu-1","labels":{"gpu":${deep(10_000)}}}`, http: 400, code: "invalid_argument" },
  { what: "10 000 nested arrays under an unknown field", path: LIST, body: `{"nested":${deep(10_000)}}`, http: 400, code: "invalid_argument", message: /nested/ },
  { what: "10 000 nested objects", path: LIST, body: '{"a":'.repeat(10_000) + "{}" + "}".repeat(10_000), http: 400, code: "invalid_argument" },
  { what: "bytes that are not UTF-8 in a label value", path: REGISTER, body: Buffer.concat([Buffer.from('{"hostname":"gpu-1","labels":{"gpu":"a'), NOT_UTF8, Buffer.from('"}}')]), http: 400, code: "invalid_argument", message: /^labels: value/ },
  { what: "bytes that are not UTF-8 in a label key", path: REGISTER, body: Buffer.concat([Buffer.from('{"hostname":"gpu-1","labels":{"g'), NOT_UTF8, Buffer.from('":"a100"}}')]), http: 400, code: "invalid_argument", message: /^labels: key/ },
  { what: "bytes that are not UTF-8 in ollama_version", path: REGISTER, body: Buffer.concat([Buffer.from('{"hostname":"gpu-1","ollamaVersion":"0.5'), NOT_UTF8, Buffer.from('"}')]), http: 400, code: "invalid_argument", message: /^ollama_version:/ },
  { what: "bytes that are not UTF-8 in an agent_id", path: GET, body: Buffer.concat([Buffer.from('{"agentId":"'), NOT_UTF8, Buffer.from('"}')]), http: 400, code: "invalid_argument", message: /^agent_id:/ },
  // connect-node's own answer to binary it cannot parse, as for the malformed binary above.
  { what: "a label value that is not UTF-8 in protobuf binary", path: REGISTER, body: Buffer.concat([registerWithRawField(5, Buffer.from("0.5.7")), labelEntry(Buffer.from("gpu"), NOT_UTF8)]), contentType: "application/proto", http: 500, code: "internal", message: /parse binary.*utf-8/i },
];

const sendGrpc = (testCase: GrpcCase) =>
  rawGrpc(server.grpcAddress, { path: testCase.path, body: testCase.body, headers: testCase.headers ?? {} });
const sendConnect = (testCase: ConnectCase) =>
  rawHttp(server.httpUrl, {
    method: testCase.method ?? "POST",
    path: testCase.path,
    headers: { "content-type": testCase.contentType ?? "application/json", ...testCase.headers },
    ...(testCase.body === undefined ? {} : { body: testCase.body }),
  });

describe("absurd requests", () => {
  it.each(ABSURD_GRPC_CASES)("over gRPC, $what: grpc-status $code", async (testCase) => {
    const before = await onDisk(server.dataDir);

    const result = await sendGrpc(testCase);

    expect({ http: result.httpStatus, grpcStatus: result.grpcStatus }).toEqual({ http: testCase.http ?? 200, grpcStatus: testCase.code });
    if (testCase.message !== undefined) expect(result.grpcMessage).toMatch(testCase.message);
    expect((await rawGrpc(server.grpcAddress, { path: LIST, body: list() })).grpcStatus).toBe(Status.OK);
    expect(await onDisk(server.dataDir)).toEqual(before);
  });

  it.each(ABSURD_CONNECT_CASES)("over Connect, $what: HTTP $http, $code", async (testCase) => {
    const before = await onDisk(server.dataDir);

    const result = await sendConnect(testCase);

    expect({ http: result.status, code: result.json?.code }).toEqual({ http: testCase.http, code: testCase.code });
    if (testCase.message !== undefined) expect(result.json?.message).toMatch(testCase.message);
    const after = await rawHttp(server.httpUrl, { path: LIST, headers: { "content-type": "application/json" }, body: "{}" });
    expect(after.status).toBe(200);
    expect(after.text).toContain('"hostname":"seed-node"');
    expect(await onDisk(server.dataDir)).toEqual(before);
  });

  it("leave the heap, once collected, within 10% of what it was before, when sent all again three times", async () => {
    const sendAll = async (): Promise<void> => {
      for (const testCase of ABSURD_GRPC_CASES) expect((await sendGrpc(testCase)).grpcStatus).toBe(testCase.code);
      for (const testCase of ABSURD_CONNECT_CASES) expect((await sendConnect(testCase)).status).toBe(testCase.http);
    };
    // One round first, so what the cases load once (code, caches, pools) is there: what stays after the
    // next rounds is what they leave behind.
    await sendAll();
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let round = 0; round < 3; round++) await sendAll();
    collectGarbage();
    const heapAfter = process.memoryUsage().heapUsed;

    expect(Math.abs(heapAfter - heapBefore) / heapBefore).toBeLessThan(0.1);
    expect((await sendConnect({ what: "", path: LIST, body: "{}", http: 200, code: undefined })).text).toContain('"hostname":"seed-node"');
  });
});
