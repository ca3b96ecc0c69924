import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { probeOllama, versionUrl } from "../../src/agent/ollama-probe.js";
import { type FakeOllama, freePort, startFakeOllama } from "../support/fake-ollama.js";

const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function ollama(version?: string): Promise<FakeOllama> {
  const fake = await startFakeOllama(version === undefined ? {} : { version });
  closers.push(() => fake.close());
  return fake;
}

/** An HTTP server on loopback answering every request with `handle`. */
async function answering(handle: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("probeOllama", () => {
  it("returns the version Ollama reports", async () => {
    const fake = await ollama("0.6.1");
    expect(await probeOllama(fake.url)).toEqual({ reachable: true, version: "0.6.1" });
  });

  it("says Ollama is unreachable, naming the URL and the cause, when nothing listens", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const result = await probeOllama(url);
    expect(result).toEqual({ reachable: false, reason: expect.stringMatching(/^GET http:\/\/127\.0\.0\.1:\d+\/api\/version failed: ECONNREFUSED/) });
  });

  it("gives up after the timeout on an Ollama that never answers", async () => {
    const url = await answering(() => undefined);
    const result = await probeOllama(url, { timeoutMs: 50 });
    expect(result).toEqual({ reachable: false, reason: expect.stringContaining("got no answer within 50 ms") });
  });

  it("refuses an answer that is not Ollama's", async () => {
    const html = await answering((_request, response) => response.end("<html>hello</html>"));
    const error = await answering((_request, response) => {
      response.writeHead(500);
      response.end("boom");
    });
    const noVersion = await answering((_request, response) => response.end('{"status":"ok"}'));
    expect(await probeOllama(html)).toMatchObject({ reachable: false, reason: expect.stringContaining("not JSON") });
    expect(await probeOllama(error)).toMatchObject({ reachable: false, reason: expect.stringContaining("HTTP 500: boom") });
    expect(await probeOllama(noVersion)).toMatchObject({ reachable: false, reason: expect.stringContaining('without a usable "version"') });
  });

  it("keeps a path prefix in the URL", () => {
    expect(versionUrl("http://10.0.0.7:11434")).toBe("http://10.0.0.7:11434/api/version");
    expect(versionUrl("https://proxy.lan/ollama")).toBe("https://proxy.lan/ollama/api/version");
    expect(versionUrl("https://proxy.lan/ollama/")).toBe("https://proxy.lan/ollama/api/version");
  });
});
