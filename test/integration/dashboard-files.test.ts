// The dashboard's files over plain HTTP, as a browser or a caching proxy sees them: index.html at /, never
// cached; its hashed assets with their content types, cached for a year; a 304 for a version already held;
// HEAD without a body; other paths still a 404 that says where things are.

import { afterEach, describe, expect, it } from "vitest";
import { type TestServer, startTestServer } from "../support/test-server.js";

let server: TestServer | undefined;
afterEach(async () => {
  await server?.dispose();
  server = undefined;
});

async function started(): Promise<TestServer> {
  server = await startTestServer();
  return server;
}

/** The script and stylesheet index.html names. */
function assetsOf(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1] as string);
}

describe("the dashboard's files on the HTTP port", () => {
  it("serves the page at / as HTML that is never cached and may load only its own origin's files", async () => {
    const { httpUrl } = await started();
    const response = await fetch(`${httpUrl}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("cache-control")).toBe("no-cache");
    expect(response.headers.get("content-security-policy")).toMatch(/^default-src 'self'; .*connect-src 'self'/);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await response.text();
    expect(html).toContain("<title>agent-registry fleet</title>");
    // Nothing from a CDN: every script and stylesheet is one of ours.
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  it("serves the hashed script and stylesheet with their content types, cached for a year", async () => {
    const { httpUrl } = await started();
    const assets = assetsOf(await (await fetch(`${httpUrl}/`)).text());
    expect(assets.map((path) => path.replace(/-[\w-]{8,}\./, "-HASH."))).toEqual(expect.arrayContaining(["/assets/index-HASH.js", "/assets/index-HASH.css"]));
    for (const path of assets) {
      const response = await fetch(`${httpUrl}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe(path.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
  });

  it("answers 304 to a browser that has this version, and HEAD with the headers only", async () => {
    const { httpUrl } = await started();
    const first = await fetch(`${httpUrl}/`);
    const etag = first.headers.get("etag") as string;
    expect(etag).toMatch(/^"[\w-]+"$/);

    const again = await fetch(`${httpUrl}/`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");

    const head = await fetch(`${httpUrl}/index.html`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String((await first.arrayBuffer()).byteLength));
    expect(await head.text()).toBe("");
  });

  it("still answers other paths with a 404 that names the paths there are", async () => {
    const { httpUrl } = await started();
    const response = await fetch(`${httpUrl}/assets/nope.js`);
    expect(response.status).toBe(404);
    expect(await response.text()).toBe('no such path: "/assets/nope.js"; try /, /healthz, /readyz, /metrics or POST /registry.v1.AgentRegistry/<Method>\n');
  });
});
