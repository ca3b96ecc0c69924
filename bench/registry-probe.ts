// The orchestrator's own calls to the registry under test (not load): /metrics scrapes (and waiting by them
// for the store's next write), ListAgents over gRPC (timed to the last byte, the response left undecoded but
// for its page token) and over Connect JSON on the HTTP port (counted, not kept), and a WatchAgents stream whose events are
// timestamped on arrival.

import * as http from "node:http";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  AgentRegistry,
  ListAgentsRequestSchema,
  type WatchAgentsResponse,
  WatchAgentsRequestSchema,
} from "../gen/registry/v1/registry_pb.js";
import { grpcServiceDefinition } from "../src/grpc-service-definition.js";
import { PromText } from "./prom-text.js";

type Method = grpc.MethodDefinition<unknown, unknown>;
const SERVICE = grpcServiceDefinition(AgentRegistry) as unknown as Record<string, Method>;

export async function scrape(httpUrl: string): Promise<PromText> {
  const response = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${httpUrl}/metrics answered ${response.status}`);
  return PromText.parse(await response.text());
}

/** Resolves just after the store's next successful write (polling /metrics every 100 ms). */
export async function afterNextStoreWrite(httpUrl: string, timeoutMs: number): Promise<void> {
  const writes = async (): Promise<number> => (await scrape(httpUrl)).sum("agent_registry_store_writes_total", { result: "ok" });
  const started = performance.now();
  const before = await writes();
  while ((await writes()) === before) {
    if (performance.now() - started > timeoutMs) throw new Error(`the store did not write within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface ListPage {
  readonly bytes: number;
  readonly nextPageToken: string;
}

/** ListAgents over gRPC, the reply kept as bytes: the timing is the server's and the wire's, not a decoder's. */
export class RawListClient {
  private readonly client: grpc.Client;
  private readonly method = SERVICE["ListAgents"] as Method;

  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  }

  list(pageSize: number, pageToken: string, deadlineMs = 10_000): Promise<ListPage> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        this.method.path,
        this.method.requestSerialize,
        (bytes: Buffer) => bytes,
        create(ListAgentsRequestSchema, { pageSize, pageToken }),
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (error, bytes) =>
          error === null && bytes !== undefined
            ? resolve({ bytes: bytes.length, nextPageToken: nextPageToken(bytes) })
            : reject(error ?? new Error("no response")),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/** Field 2 (next_page_token) of a ListAgentsResponse, skipping the agents without decoding them. */
function nextPageToken(bytes: Buffer): string {
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[at++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
      shift += 7;
    }
  };
  while (at < bytes.length) {
    const key = varint();
    const wireType = key & 7;
    if (wireType === 0) varint();
    else if (wireType === 2) {
      const length = varint();
      if (key >>> 3 === 2) return bytes.toString("utf8", at, at + length);
      at += length;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else throw new Error(`unexpected wire type ${wireType} in ListAgentsResponse`);
  }
  return "";
}

/** The whole registry in one Connect JSON call (page_size 0), as curl or a dashboard would ask. */
/**
 * ListAgents over Connect JSON (a POST of `request`), by node:http on a kept-alive connection: the answer is
 * counted as it streams in and kept only if `keepBody` (or it is an error). As light as a client gets: the
 * callers share the load generator's core, and decoding 4 MB lists there would slow its acks.
 */
export function listConnectJson(httpUrl: string, request: object, keepBody: boolean): Promise<{ bytes: number; body: string | undefined }> {
  const payload = JSON.stringify(request);
  return new Promise((resolve, reject) => {
    const call = http.request(
      `${httpUrl}/registry.v1.AgentRegistry/ListAgents`,
      { method: "POST", agent: KEEP_ALIVE, timeout: 30_000, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } },
      (response) => {
        const ok = response.statusCode === 200;
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (keepBody || !ok) chunks.push(chunk);
        });
        response.on("error", reject);
        response.on("end", () => {
          const body = keepBody || !ok ? Buffer.concat(chunks).toString("utf8") : undefined;
          if (ok) resolve({ bytes, body });
          else reject(new Error(`ListAgents over Connect answered ${response.statusCode}: ${body?.slice(0, 200)}`));
        });
      },
    );
    call.on("timeout", () => call.destroy(new Error("ListAgents over Connect: no answer within 30 s")));
    call.on("error", reject);
    call.end(payload);
  });
}

const KEEP_ALIVE = new http.Agent({ keepAlive: true });

export interface WatchHandle {
  /** Events with their arrival time (Date.now(), the clock the server stamps with). */
  readonly events: Array<{ readonly at: number; readonly event: WatchAgentsResponse }>;
  /** Resolves once `count` snapshot events arrived. */
  snapshot(count: number, timeoutMs: number): Promise<void>;
  /** The status the stream ended with, if it did. */
  ended(): grpc.StatusObject | undefined;
  close(): void;
}

export function watchAgents(address: string): WatchHandle {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  const method = SERVICE["WatchAgents"] as Method;
  const call = client.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    create(WatchAgentsRequestSchema, {}),
    new grpc.Metadata(),
    {},
  );
  const events: Array<{ at: number; event: WatchAgentsResponse }> = [];
  let snapshotCount = 0;
  let waiter: { count: number; resolve(): void } | undefined;
  let status: grpc.StatusObject | undefined;
  call.on("data", (event: WatchAgentsResponse) => {
    events.push({ at: Date.now(), event });
    if (event.snapshot) snapshotCount++;
    if (waiter !== undefined && snapshotCount >= waiter.count) waiter.resolve();
  });
  call.on("status", (s: grpc.StatusObject) => (status = s));
  call.on("error", () => {});
  return {
    events,
    snapshot: (count, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        if (snapshotCount >= count) return resolve();
        const timer = setTimeout(() => reject(new Error(`WatchAgents sent ${snapshotCount} of ${count} snapshot events in ${timeoutMs} ms`)), timeoutMs);
        waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            waiter = undefined;
            resolve();
          },
        };
      }),
    ended: () => status,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}
