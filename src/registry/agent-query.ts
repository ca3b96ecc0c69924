// Which agents a ListAgents or WatchAgents caller wants (status, label selector, model, loaded model,
// ready) and how a listing is cut
// into stable pages. Pure functions over agent records.

import type { AgentRecord, AgentStatus } from "./agent.js";
import { hasLoadedModel, hasModel } from "./inventory.js";
import { invalidArgument } from "./registry-error.js";

export interface AgentFilter {
  readonly status: AgentStatus | undefined;
  /** Every pair must match. */
  readonly labels: ReadonlyArray<readonly [string, string]>;
  /** Only agents with this model installed. */
  readonly model?: string | undefined;
  /** Only agents with this model loaded now. */
  readonly loadedModel?: string | undefined;
  /** Only agents a load balancer should use (isReady). */
  readonly ready?: boolean | undefined;
}

export interface ListQuery extends AgentFilter {
  /** 0: everything in one page. */
  readonly pageSize: number;
  /** Exclusive start: the sort key of the last agent of the previous page. */
  readonly after: SortKey | undefined;
}

export interface Page {
  readonly agents: AgentRecord[];
  readonly nextPageToken: string;
}

type SortKey = readonly [hostname: string, id: string];

/** Parses `k=v,k2=v2`; an empty selector matches everything. */
export function parseLabelSelector(selector: string): AgentFilter["labels"] {
  if (selector.trim() === "") return [];
  return selector.split(",").map((term) => {
    const eq = term.indexOf("=");
    const key = term.slice(0, eq).trim();
    const value = term.slice(eq + 1).trim();
    if (eq < 0 || key === "" || value.includes("=")) {
      throw invalidArgument(
        "label_selector",
        `must be comma-separated key=value pairs such as "gpu=a100,zone=eu", got term ${JSON.stringify(term)}`,
      );
    }
    return [key, value] as const;
  });
}

export function parsePageSize(pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0) {
    throw invalidArgument("page_size", `must be 0 (everything) or a positive number, got ${pageSize}`);
  }
  return pageSize;
}

export function matches(agent: AgentRecord, filter: AgentFilter): boolean {
  if (filter.status !== undefined && agent.status !== filter.status) return false;
  if (filter.ready === true && !isReady(agent)) return false;
  if (filter.model !== undefined && !hasModel(agent.inventory, filter.model)) return false;
  if (filter.loadedModel !== undefined && !hasLoadedModel(agent.inventory, filter.loadedModel)) return false;
  return filter.labels.every(([key, value]) => agent.labels[key] === value);
}

/** What a load balancer should send work to: ONLINE, not draining, not held by the offline guard, reachable. */
export function isReady(agent: AgentRecord): boolean {
  return agent.status === "online" && !agent.draining && !agent.livenessHeld && agent.unreachable === undefined;
}

export function compareAgents(a: AgentRecord, b: AgentRecord): number {
  return compareKeys([a.hostname, a.id], [b.hostname, b.id]);
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

/**
 * One page of the agents in `sorted` (sorted by compareAgents) that match `query`. Pages continue after the
 * last key seen, so agents added or removed between calls never make another agent repeat or vanish. The
 * records in `sorted` may be older versions of the agents (same sort keys): `current` gives each one's
 * record now, which is what is matched and returned. Reads only as far as the page reaches.
 */
export function pageOf(
  sorted: readonly AgentRecord[],
  query: ListQuery,
  current: (record: AgentRecord) => AgentRecord = (record) => record,
): Page {
  const start = query.after === undefined ? 0 : firstAfter(sorted, query.after);
  const agents: AgentRecord[] = [];
  for (let i = start; i < sorted.length; i++) {
    const record = current(sorted[i] as AgentRecord);
    if (!matches(record, query)) continue;
    const last = agents.at(-1);
    if (query.pageSize !== 0 && agents.length === query.pageSize && last !== undefined) {
      return { agents, nextPageToken: encodePageToken([last.hostname, last.id]) };
    }
    agents.push(record);
  }
  return { agents, nextPageToken: "" };
}

/** Where `record` is, or would go, in `sorted` (sorted by compareAgents): the first agent not before it. */
export function sortedPosition(sorted: readonly AgentRecord[], record: AgentRecord): number {
  return firstNot(sorted, (agent) => compareAgents(agent, record) < 0);
}

function firstAfter(sorted: readonly AgentRecord[], key: SortKey): number {
  return firstNot(sorted, (agent) => compareKeys([agent.hostname, agent.id], key) <= 0);
}

/** Binary search: the index of the first agent for which `before` is false (it is true for a prefix). */
function firstNot(sorted: readonly AgentRecord[], before: (agent: AgentRecord) => boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(sorted[mid] as AgentRecord)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function encodePageToken(key: SortKey): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function parsePageToken(token: string): SortKey | undefined {
  if (token === "") return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(token, "base64url").toString());
    if (Array.isArray(key) && key.length === 2 && key.every((part) => typeof part === "string")) {
      return [key[0] as string, key[1] as string];
    }
  } catch {
    // Not JSON: reported below like any other foreign token.
  }
  throw invalidArgument("page_token", "is not a token this server issued; pass the next_page_token of the previous page, or none to start over");
}
