// A stand-in for a node's Ollama: an HTTP server on loopback answering GET /api/version with {"version": ...}.
// Can be started on a given port, so a test can bring "Ollama" up where a daemon already looks for it.

import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeOllama {
  readonly url: string;
  readonly port: number;
  /** How many /api/version requests it answered. */
  readonly probes: number;
  close(): Promise<void>;
}

export async function startFakeOllama(options: { port?: number; version?: string } = {}): Promise<FakeOllama> {
  let probes = 0;
  const server = createServer((request, response) => {
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
