// The node's Ollama models: installed ones from GET /api/tags, loaded ones (with the VRAM they hold and when
// they unload) from GET /api/ps. A failure is a value with a reason, never an exception; models whose
// fields are not what Ollama sends are left out.

import type { Model } from "../registry/inventory.js";

export interface ModelReading {
  readonly models: readonly Model[];
  /** Why the models could not be read; undefined when Ollama answered both. */
  readonly problem?: string | undefined;
}

export interface OllamaModelsOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly fetch?: typeof fetch;
}

interface TagsEntry {
  readonly name?: unknown;
  readonly model?: unknown;
  readonly digest?: unknown;
  readonly size?: unknown;
}

interface PsEntry extends TagsEntry {
  readonly size_vram?: unknown;
  readonly expires_at?: unknown;
}

export async function readModels(ollamaUrl: string, options: OllamaModelsOptions = {}): Promise<ModelReading> {
  const tags = await getJson(ollamaUrl, "api/tags", options);
  if ("problem" in tags) return { models: [], problem: tags.problem };
  const ps = await getJson(ollamaUrl, "api/ps", options);
  if ("problem" in ps) return { models: [], problem: ps.problem };
  const loaded = new Map<string, PsEntry>();
  for (const entry of entries(ps.body)) {
    const name = nameOf(entry);
    if (name !== undefined) loaded.set(name, entry);
  }
  const models: Model[] = [];
  const seen = new Set<string>();
  // A model loaded but not listed by /api/tags (removed while loaded) is still there to route to.
  for (const entry of [...entries(tags.body), ...loaded.values()]) {
    const name = nameOf(entry);
    if (name === undefined || seen.has(name)) continue;
    seen.add(name);
    const running = loaded.get(name);
    const expiresAt = typeof running?.expires_at === "string" ? Date.parse(running.expires_at) : NaN;
    models.push({
      name,
      digest: typeof entry.digest === "string" ? entry.digest : "",
      sizeBytes: wholeNumber(entry.size),
      loaded: running !== undefined,
      vramBytes: running === undefined ? 0 : wholeNumber(running.size_vram),
      expiresAt: Number.isNaN(expiresAt) ? undefined : expiresAt,
    });
  }
  return { models };
}

function entries(body: unknown): PsEntry[] {
  const models = (body as { models?: unknown } | null)?.models;
  return Array.isArray(models) ? models.filter((entry): entry is PsEntry => typeof entry === "object" && entry !== null) : [];
}

function nameOf(entry: TagsEntry): string | undefined {
  const name = typeof entry.name === "string" && entry.name !== "" ? entry.name : entry.model;
  return typeof name === "string" && name !== "" ? name : undefined;
}

function wholeNumber(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

async function getJson(ollamaUrl: string, path: string, options: OllamaModelsOptions): Promise<{ body: unknown } | { problem: string }> {
  const base = new URL(ollamaUrl);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const url = new URL(path, base).href;
  const timeoutMs = options.timeoutMs ?? 2000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  try {
    const response = await (options.fetch ?? fetch)(url, { signal, headers: { accept: "application/json" } });
    const text = await response.text();
    if (!response.ok) return { problem: `GET ${url} answered HTTP ${response.status}: ${text.slice(0, 200)}` };
    try {
      return { body: JSON.parse(text) as unknown };
    } catch {
      return { problem: `GET ${url} answered something that is not JSON: ${JSON.stringify(text.slice(0, 200))}` };
    }
  } catch (error) {
    if (timeout.aborted) return { problem: `GET ${url} got no answer within ${timeoutMs} ms` };
    const cause = (error as Error).cause;
    return { problem: `GET ${url} failed: ${cause instanceof Error ? cause.message : (error as Error).message}` };
  }
}
