// Asks the node's Ollama which version it runs (`GET /api/version`, answered with {"version":"0.5.7"}), with a
// timeout. A failure is a value with a reason a person can act on, never an exception: the daemon keeps
// probing while Ollama is down.

import { ollamaVersionProblem } from "../common/registration-rules.js";

export type OllamaProbeResult =
  | { readonly reachable: true; readonly version: string }
  | { readonly reachable: false; readonly reason: string };

export const DEFAULT_PROBE_TIMEOUT_MS = 2000;


export interface ProbeOptions {
  readonly timeoutMs?: number;
  /** Aborts the probe (the daemon is stopping). */
  readonly signal?: AbortSignal;
  readonly fetch?: typeof fetch;
}

export async function probeOllama(ollamaUrl: string, options: ProbeOptions = {}): Promise<OllamaProbeResult> {
  const url = versionUrl(ollamaUrl);
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(url, { signal, headers: { accept: "application/json" } });
  } catch (error) {
    if (timeout.aborted) return down(`GET ${url} got no answer within ${timeoutMs} ms`);
    return down(`GET ${url} failed: ${networkReason(error)}`);
  }
  let body: string;
  try {
    body = await response.text();
  } catch (error) {
    return down(`GET ${url} broke off while reading the answer: ${networkReason(error)}`);
  }
  if (!response.ok) return down(`GET ${url} answered HTTP ${response.status}: ${body.slice(0, 200)}`);
  let version: unknown;
  try {
    version = (JSON.parse(body) as { version?: unknown } | null)?.version;
  } catch {
    return down(`GET ${url} answered something that is not JSON: ${JSON.stringify(body.slice(0, 200))}; is this Ollama?`);
  }
  // The registry's own rule, so the daemon never registers a version the registry refuses.
  if (typeof version !== "string" || version === "" || ollamaVersionProblem(version) !== undefined) {
    return down(`GET ${url} answered without a usable "version" (got ${JSON.stringify(version) ?? "nothing"}); is this Ollama?`);
  }
  return { reachable: true, version };
}

/** `<ollamaUrl>/api/version`, keeping a path prefix (Ollama behind a reverse proxy at /ollama/). */
export function versionUrl(ollamaUrl: string): string {
  const base = new URL(ollamaUrl);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return new URL("api/version", base).href;
}

function down(reason: string): OllamaProbeResult {
  return { reachable: false, reason };
}

/** fetch's errors say "fetch failed" and keep the useful part (ECONNREFUSED...) in their cause. */
function networkReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause: unknown = error.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code === undefined ? cause.message : `${code} (${cause.message})`;
  }
  return error.message;
}
