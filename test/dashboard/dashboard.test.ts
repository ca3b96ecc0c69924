// The fleet dashboard in a real browser (Debian's Chromium, headless, via playwright-core) against a real
// server on loopback: what an operator sees on the page as nodes register, stop beating, leave, and as the
// server restarts; the filter; a reader token asked for and refused. Also saves screenshots and the render
// times of a 1 000-node fleet under test-output/dashboard/ (BENCHMARKS.md reports them).

import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AgentStatus, type RegisterRequestSchema, WatchEventType } from "../../gen/registry/v1/registry_pb.js";
import { NO_SECURITY, type SecurityConfig, parseTokenList } from "../../src/config/index.js";
import { CHROMIUM, launchChromium } from "../support/browser.js";
import { type BeatStream, type RegistryClient, connectClient, grpcClient } from "../support/clients.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const OUTPUT = fileURLToPath(new URL("../../test-output/dashboard/", import.meta.url));
const INTERVAL_MS = 200;
const TIMEOUT_MS = 600;
const READER = "reader-token-000000000000001";

interface RowView {
  readonly id: string;
  readonly hostname: string;
  readonly address: string;
  readonly status: string;
  readonly dataStatus: string;
  readonly version: string;
  readonly labels: string;
  readonly hidden: boolean;
}

// Page-side code is passed as text: the test's own TypeScript has no DOM.
const READ_ROWS = `[...document.querySelectorAll("#fleet tbody tr")].map((tr) => ({
  id: tr.dataset.agentId, hostname: tr.querySelector(".hostname").textContent, address: tr.querySelector(".address").textContent,
  status: tr.querySelector(".status").textContent, dataStatus: tr.dataset.status, version: tr.querySelector(".version").textContent,
  labels: tr.querySelector(".labels").textContent, hidden: tr.hidden }))`;
// Records when each row first shows OFFLINE, by the same clock the test reads (Date.now() on one machine).
const RECORD_OFFLINE = `window.offlineSeen = {};
  new MutationObserver((records) => { for (const record of records) { const tr = record.target;
    if (tr.dataset.status === "offline" && !(tr.dataset.agentId in window.offlineSeen)) window.offlineSeen[tr.dataset.agentId] = Date.now(); } })
  .observe(document.querySelector("#fleet tbody"), { attributes: true, subtree: true, attributeFilter: ["data-status"] });`;

let browser: Browser;
const servers: TestServer[] = [];
const clients: RegistryClient[] = [];
const streams: BeatStream[] = [];
const timers: Array<ReturnType<typeof setInterval>> = [];

async function server(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const started = await startTestServer(overrides);
  servers.push(started);
  return started;
}

function connect(of: TestServer, token?: string): RegistryClient {
  const client = connectClient(of.httpUrl, token === undefined ? {} : { token });
  clients.push(client);
  return client;
}

type Inventory = NonNullable<MessageInitShape<typeof RegisterRequestSchema>["inventory"]>;

const GIB = 1024n ** 3n;

/** A node's inventory as its daemon would send it: `gpus` A100s of 80 GiB, `loaded` of the models loaded. */
function inventory(gpus: number, models: readonly string[], loaded: readonly string[]): Inventory {
  return {
    gpus: Array.from({ length: gpus }, (_, index) => ({
      index,
      uuid: `GPU-${index}`,
      name: "NVIDIA A100-SXM4-80GB",
      memoryTotalBytes: 80n * GIB,
      memoryUsedBytes: loaded.length > 0 ? 31n * GIB : 0n,
      utilizationPercent: 12,
      temperatureCelsius: 41,
    })),
    models: models.map((name) => ({ name, digest: "sha256:" + "ab".repeat(32), sizeBytes: 5n * GIB, loaded: loaded.includes(name), vramBytes: loaded.includes(name) ? 5n * GIB : 0n })),
  };
}

/** Registers `count` nodes named `${prefix}-N` with the given labels; returns their ids in that order. */
async function registerNodes(
  client: RegistryClient,
  count: number,
  prefix: string,
  labels: (n: number) => Record<string, string> = () => ({}),
  inventoryOf: (n: number) => Inventory | undefined = () => undefined,
): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < count; from += 50) {
    const batch = Array.from({ length: Math.min(50, count - from) }, (_, k) => from + k + 1);
    const registered = await Promise.all(
      batch.map((n) =>
        client.register({
          hostname: `${prefix}-${String(n).padStart(3, "0")}`,
          ipAddress: `10.0.${Math.floor(n / 250)}.${n % 250}`,
          port: 11434,
          ollamaVersion: "0.5.7",
          labels: labels(n),
          ...(inventoryOf(n) === undefined ? {} : { inventory: inventoryOf(n) }),
        }),
      ),
    );
    ids.push(...registered.map((response) => response.agent?.id ?? ""));
  }
  return ids;
}

/** A heartbeat stream for `agentId` that beats every interval until stopped. */
function beating(of: TestServer, agentId: string): { stream: BeatStream; stop(): void } {
  const client = grpcClient(of.grpcAddress);
  clients.push(client);
  const stream = client.heartbeat();
  streams.push(stream);
  let seq = 1n;
  stream.send({ agentId, seq });
  const timer = setInterval(() => stream.send({ agentId, seq: ++seq }), INTERVAL_MS);
  timers.push(timer);
  return { stream, stop: () => clearInterval(timer) };
}

async function openPage(of: TestServer, { live = true } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(of.httpUrl + "/");
  if (live) await page.waitForSelector('#connection[data-state="live"]', { timeout: 5000 });
  return page;
}

const rows = (page: Page): Promise<RowView[]> => page.evaluate<RowView[]>(READ_ROWS);
const shown = async (page: Page): Promise<RowView[]> => (await rows(page)).filter((row) => !row.hidden);

/** Waits for the server's STATUS_CHANGED OFFLINE event of `agentId`; returns when it came (Date.now()). */
async function offlineEventOf(client: RegistryClient, agentId: string, watch = client.watch()): Promise<number> {
  for (;;) {
    const event = await watch.recv();
    if (event.type === WatchEventType.STATUS_CHANGED && event.agent?.id === agentId && event.agent.status === AgentStatus.OFFLINE) {
      const at = Date.now();
      watch.cancel();
      return at;
    }
  }
}

// Polled with page.evaluate rather than page.waitForFunction: the page's Content-Security-Policy (no eval)
// holds for Playwright's injected predicates too, and the test must not turn it off.
async function offlineOnPage(page: Page, agentId: string): Promise<number> {
  const seen = `window.offlineSeen[${JSON.stringify(agentId)}] ?? 0`;
  await expect.poll(() => page.evaluate<number>(seen), { timeout: 5000, interval: 20 }).toBeGreaterThan(0);
  return page.evaluate<number>(seen);
}

const rowCount = (page: Page): Promise<number> => page.evaluate<number>(`document.querySelectorAll("#fleet tbody tr").length`);

beforeAll(async () => {
  if (CHROMIUM !== undefined) browser = await launchChromium();
  await mkdir(OUTPUT, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  for (const timer of timers.splice(0)) clearInterval(timer);
  for (const stream of streams.splice(0)) stream.cancel();
  for (const client of clients.splice(0)) client.close();
  for (const context of browser?.contexts() ?? []) await context.close();
  await Promise.all(servers.splice(0).map((started) => started.dispose()));
});

describe.skipIf(CHROMIUM === undefined)("the fleet dashboard in Chromium", () => {
  it("lists every registered node as a row, in ListAgents' order, with its address, status, version and labels", async () => {
    const registry = await server();
    const client = connect(registry);
    for (const hostname of ["gpu-c", "gpu-a", "gpu-b"]) {
      await client.register({ hostname, ipAddress: "10.0.0.7", port: 11434, ollamaVersion: "0.5.7", labels: { zone: "eu", gpu: "a100" } });
    }
    const page = await openPage(registry);
    await expect.poll(() => rowCount(page)).toBe(3);

    const listed = (await client.listAgents()).agents.map((agent) => agent.hostname);
    const seen = await rows(page);
    expect(seen.map((row) => row.hostname)).toEqual(listed);
    expect(listed).toEqual(["gpu-a", "gpu-b", "gpu-c"]);
    expect(seen[0]).toMatchObject({ address: "10.0.0.7:11434", dataStatus: "online", version: "0.5.7", labels: "gpu=a100 zone=eu" });
    // Status in words, not colour alone.
    expect(seen[0]?.status).toContain("ONLINE");
    expect(await page.textContent("#counts")).toBe("3 nodes · 3 ONLINE · 0 OFFLINE · 0 draining · 0 held");
  });

  it("says it is live and that there are no nodes, on an empty registry", async () => {
    const registry = await server();
    const page = await openPage(registry);
    expect(await page.textContent("#connection")).toBe("live");
    expect(await page.textContent("#counts")).toBe("0 nodes · 0 ONLINE · 0 OFFLINE · 0 draining · 0 held");
    expect(await page.textContent("#empty")).toBe("No nodes registered.");
  });

  it("shows a node that stops beating as OFFLINE within 1 s of the server's event", async () => {
    const registry = await server({ heartbeatIntervalMs: INTERVAL_MS, agentTimeoutMs: TIMEOUT_MS });
    const client = connect(registry);
    const [id] = await registerNodes(client, 1, "gpu");
    const node = beating(registry, id as string);
    const page = await openPage(registry);
    await page.evaluate(RECORD_OFFLINE);
    const watch = client.watch();

    node.stop();
    const eventAt = await offlineEventOf(client, id as string, watch);
    const pageAt = await offlineOnPage(page, id as string);

    expect(pageAt - eventAt).toBeLessThan(1000);
    expect((await rows(page))[0]?.status).toContain("OFFLINE");
    expect(await page.textContent("#counts")).toBe("1 nodes · 0 ONLINE · 1 OFFLINE · 0 draining · 0 held");
  });

  it("shows a node that leaves as OFFLINE within 1 s of the server's event", async () => {
    const registry = await server({ heartbeatIntervalMs: INTERVAL_MS, agentTimeoutMs: TIMEOUT_MS });
    const client = connect(registry);
    const ids = await registerNodes(client, 2, "gpu");
    const leaver = beating(registry, ids[0] as string);
    beating(registry, ids[1] as string);
    const page = await openPage(registry);
    await page.evaluate(RECORD_OFFLINE);
    const watch = client.watch();

    leaver.stop();
    leaver.stream.send({ agentId: ids[0] as string, seq: 1000n, leaving: true });
    const eventAt = await offlineEventOf(client, ids[0] as string, watch);
    const pageAt = await offlineOnPage(page, ids[0] as string);

    expect(pageAt - eventAt).toBeLessThan(1000);
    expect((await rows(page)).map((row) => row.dataStatus)).toEqual(["offline", "online"]);
  });

  it("narrows the rows as a hostname, a label or an address is typed into the filter", async () => {
    const registry = await server();
    const client = connect(registry);
    await registerNodes(client, 3, "gpu-eu", () => ({ zone: "eu" }));
    await registerNodes(client, 3, "gpu-us", () => ({ zone: "us" }));
    const page = await openPage(registry);
    await expect.poll(() => rowCount(page)).toBe(6);

    await page.fill("#filter", "zone=eu");
    await expect.poll(async () => (await shown(page)).map((row) => row.hostname)).toEqual(["gpu-eu-001", "gpu-eu-002", "gpu-eu-003"]);
    expect(await page.textContent("#counts")).toBe("showing 3 of 6 nodes · 6 ONLINE · 0 OFFLINE · 0 draining · 0 held");

    await page.fill("#filter", "GPU-US-002");
    await expect.poll(async () => (await shown(page)).map((row) => row.hostname)).toEqual(["gpu-us-002"]);

    await page.fill("#filter", "zone=mars");
    await expect.poll(async () => (await shown(page)).length).toBe(0);
    expect(await page.isVisible("#empty")).toBe(true);
    expect(await page.textContent("#empty")).toBe("No node matches the filter.");

    await page.fill("#filter", "");
    await expect.poll(async () => (await shown(page)).length).toBe(6);
  });

  it("says it is reconnecting while the server is down, and shows the restarted server's fleet from a fresh snapshot", async () => {
    const first = await server();
    const port = Number(new URL(first.httpUrl).port);
    await registerNodes(connect(first), 2, "gpu-old");
    const page = await openPage(first);
    await expect.poll(() => rowCount(page)).toBe(2);

    await first.close();
    await page.waitForSelector('#connection[data-state="reconnecting"]', { timeout: 5000 });
    expect(await page.textContent("#connection")).toMatch(/^reconnecting \(attempt \d+, next in [\d.]+ s\)/);

    // The registry comes back on the same port, with another fleet (a fresh data directory).
    const second = await server({ httpListen: { host: "127.0.0.1", port } });
    await registerNodes(connect(second), 1, "gpu-new");
    await page.waitForSelector('#connection[data-state="live"]', { timeout: 10_000 });
    await expect.poll(async () => (await rows(page)).map((row) => row.hostname), { timeout: 5000 }).toEqual(["gpu-new-001"]);
  });

  it("asks for a reader token when the server wants one, says so when it is refused, and keeps it in session storage only", async () => {
    const security: SecurityConfig = { ...NO_SECURITY, tokens: parseTokenList(`reader:${READER},admin:admin-token-0000000000000001`, "REGISTRY_TOKENS") };
    const registry = await server({ security });
    await registerNodes(connect(registry, "admin-token-0000000000000001"), 2, "gpu");
    const page = await openPage(registry, { live: false });
    const paths: string[] = [];
    page.on("request", (request) => paths.push(new URL(request.url()).pathname));

    await page.waitForSelector("#token-form:not([hidden])", { timeout: 5000 });
    expect(await page.textContent("#token-reason")).toMatch(/^This registry asks for a reader token\. The server said: /);

    await page.fill("#token", "not-a-token-this-server-knows");
    await page.click("#token-form button");
    await page.waitForSelector('#connection[data-state="refused"]', { timeout: 5000 });
    await expect.poll(() => page.textContent("#token-reason")).toMatch(/^The registry refused this token\. The server said: /);
    expect(await page.isVisible("#token-form")).toBe(true);
    expect(await rows(page)).toEqual([]);

    await page.fill("#token", READER);
    await page.click("#token-form button");
    await page.waitForSelector('#connection[data-state="live"]', { timeout: 5000 });
    await expect.poll(() => rowCount(page)).toBe(2);
    expect(await page.isVisible("#token-form")).toBe(false);
    expect(await page.evaluate(`[sessionStorage.getItem("agent-registry.reader-token"), localStorage.length, document.cookie]`)).toEqual([READER, 0, ""]);
    // Read-only: the page called ListAgents (is the server there, is the token good) and WatchAgents, nothing else.
    expect(new Set(paths.filter((path) => path.startsWith("/registry.v1.")))).toEqual(
      new Set(["/registry.v1.AgentRegistry/ListAgents", "/registry.v1.AgentRegistry/WatchAgents"]),
    );
  });

  it("shows each node's GPUs with memory used and total, its loaded models, and filters by model", async () => {
    const registry = await server();
    const client = connect(registry);
    await registerNodes(client, 1, "gpu-big", () => ({}), () => inventory(2, ["llama3.1:8b", "qwen2.5:14b"], ["llama3.1:8b"]));
    await registerNodes(client, 1, "gpu-small", () => ({}), () => inventory(1, ["mistral:7b"], []));
    await registerNodes(client, 1, "cpu", () => ({}));
    const page = await openPage(registry);
    await expect.poll(() => rowCount(page)).toBe(3);

    const cells = await page.evaluate<Array<[string, string, string]>>(
      `[...document.querySelectorAll("#fleet tbody tr")].map((tr) => [tr.querySelector(".hostname").textContent, tr.querySelector(".gpus").textContent, tr.querySelector(".models").textContent])`,
    );
    expect(cells).toEqual([
      ["cpu-001", "—", "—"],
      ["gpu-big-001", "2× NVIDIA A100-SXM4-80GB 62.0/160 GiB", "llama3.1:8b (5.0 GiB)"],
      ["gpu-small-001", "NVIDIA A100-SXM4-80GB 0.0/80.0 GiB", "—"],
    ]);

    // Installed models count for the filter, loaded or not.
    await page.fill("#filter", "qwen2.5");
    await expect.poll(async () => (await shown(page)).map((row) => row.hostname)).toEqual(["gpu-big-001"]);
    await page.fill("#filter", "mistral");
    await expect.poll(async () => (await shown(page)).map((row) => row.hostname)).toEqual(["gpu-small-001"]);
  });

  it("saves a screenshot of a 50-node fleet", async () => {
    const registry = await server({ heartbeatIntervalMs: INTERVAL_MS, agentTimeoutMs: 60_000 });
    const client = connect(registry);
    const zones = ["eu-west", "eu-north", "us-east"];
    const models = ["llama3.1:8b", "qwen2.5:14b", "mistral:7b"];
    const ids = await registerNodes(
      client,
      50,
      "gpu",
      (n) => ({ zone: zones[n % 3] as string, pool: n % 5 === 0 ? "batch" : "chat" }),
      (n) => inventory(1 + (n % 4), models, n % 3 === 0 ? [] : [models[n % 3] as string]),
    );
    // A few that left, a few draining.
    const grpc = grpcClient(registry.grpcAddress);
    clients.push(grpc);
    for (const [k, id] of ids.slice(0, 8).entries()) {
      const stream = grpc.heartbeat();
      streams.push(stream);
      stream.send(k < 4 ? { agentId: id, seq: 1n, leaving: true } : { agentId: id, seq: 1n, draining: true });
      await stream.recv();
    }
    const page = await openPage(registry);
    await expect.poll(() => rowCount(page)).toBe(50);
    await expect.poll(() => page.textContent("#counts")).toBe("50 nodes · 46 ONLINE · 4 OFFLINE · 4 draining · 0 held");
    const path = `${OUTPUT}fleet-50-nodes.png`;
    await page.screenshot({ path, fullPage: true });
    console.log(`dashboard screenshot: ${path}`);
  });

  it("renders a snapshot of 1 000 nodes and then one event, and records how long each took", async () => {
    const registry = await server();
    const client = connect(registry);
    const ids = await registerNodes(client, 1000, "gpu", (n) => ({ zone: `z${n % 7}` }));
    const page = await openPage(registry, { live: false });
    const navigated = Date.now();
    await expect.poll(() => rowCount(page), { timeout: 15_000, interval: 10 }).toBe(1000);
    const toRows = Date.now() - navigated;
    const snapshotRenders = await page.evaluate<number[]>(`performance.getEntriesByName("fleet-render").map((entry) => entry.duration)`);

    await client.deregister(ids[500] as string);
    await expect.poll(() => rowCount(page), { timeout: 5000, interval: 10 }).toBe(999);
    const eventRenders = await page.evaluate<Array<{ duration: number; rows: number }>>(
      `performance.getEntriesByName("fleet-render").slice(${snapshotRenders.length}).map((entry) => ({ duration: entry.duration, rows: entry.detail.rows }))`,
    );

    expect(eventRenders.some((render) => render.rows === 1)).toBe(true);
    const result = {
      nodes: 1000,
      loadToAllRowsMs: toRows,
      snapshotRenderMs: { frames: snapshotRenders.length, total: sum(snapshotRenders), longestFrame: Math.max(...snapshotRenders) },
      oneEventRenderMs: Math.max(...eventRenders.map((render) => render.duration)),
    };
    await writeFile(`${OUTPUT}render-1000.json`, JSON.stringify(result, null, 2) + "\n");
    console.log(`dashboard render, 1 000 nodes: ${JSON.stringify(result)}`);
  }, 60_000);
});

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
