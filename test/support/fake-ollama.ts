// A stand-in for a node's Ollama: an HTTP server on loopback answering GET /api/version with {"version": ...},
// and GET /api/tags and /api/ps with the models a test sets (in Ollama's own shapes).
// Can be started on a given port, so a test can bring "Ollama" up where a daemon already looks for it.

import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeOllama {
  readonly url: string;
  readonly port: number;
  /** How many /api/version requests it answered. */
  readonly probes: number;
  /** Every request it was sent, as "GET /api/version". */
  readonly requests: readonly string[];
  /** What /api/tags (installed) and /api/ps (loaded) answer from now on. */
  setModels(models: { tags?: readonly object[]; ps?: readonly object[] }): void;
  close(): Promise<void>;
}

/** A model as Ollama's /api/tags lists it. */
export function ollamaTag(name: string, size = 4_920_753_328): object {
  return { name, model: name, modified_at: "2024-07-23T10:01:02.123Z", size, digest: `46e0c10c039e${name.length}`, details: { format: "gguf" } };
}

/** A model as Ollama's /api/ps lists it: loaded, `vram` bytes of it on the GPU. */
export function ollamaLoaded(name: string, vram = 6_012_954_624): object {
  return { name, model: name, size: vram, digest: `46e0c10c039e${name.length}`, expires_at: "2024-07-23T10:06:02.123Z", size_vram: vram };
}

export async function startFakeOllama(
  options: { port?: number; version?: string; tags?: readonly object[]; ps?: readonly object[] } = {},
): Promise<FakeOllama> {
  let probes = 0;
  const requests: string[] = [];
  let models = { tags: options.tags ?? [], ps: options.ps ?? [] };
  const server = createServer((request, response) => {
    requests.push(`${request.method ?? ""} ${request.url ?? ""}`);
    if (request.method === "GET" && (request.url === "/api/tags" || request.url === "/api/ps")) {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ models: request.url === "/api/tags" ? models.tags : models.ps }));
      return;
    }
    if (request.method === "GET" && request.url === "/api/version") {
      probes++;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ version: options.version ?? "0.5.7" }));
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" });
    response.end("404 page not found");
  });
  await listen(server, options.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get probes() {
      return probes;
    },
    requests,
    setModels(next) {
      models = { tags: next.tags ?? models.tags, ps: next.ps ?? models.ps };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
  };
}

/** A loopback port that was free a moment ago: where an Ollama that is down "would" listen. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await listen(server, 0);
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
}
