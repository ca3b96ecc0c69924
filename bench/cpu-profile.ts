// Reads a V8 .cpuprofile (node --cpu-prof) and names where the time went: the functions with the most
// self time, and self time by origin (our src/, gen/, each node_modules package, Node internals, GC).

import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
}

export interface ProfileSummary {
  readonly file: string;
  readonly sampledMs: number;
  readonly top: ReadonlyArray<{ readonly frame: string; readonly selfPercent: number }>;
  readonly byOrigin: ReadonlyArray<{ readonly origin: string; readonly selfPercent: number }>;
}

export async function summarizeProfiles(dir: string, topN = 25): Promise<ProfileSummary[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith(".cpuprofile")).sort();
  const summaries: ProfileSummary[] = [];
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), "utf8")) as CpuProfile;
    summaries.push(summarize(join(dir, file), profile, topN));
  }
  return summaries;
}

function summarize(file: string, profile: CpuProfile, topN: number): ProfileSummary {
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const byFrame = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  for (const node of profile.nodes) {
    const count = hits.get(node.id) ?? 0;
    if (count === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const frame = `${functionName === "" ? "(anonymous)" : functionName} ${shortUrl(url)}${url === "" ? "" : `:${lineNumber + 1}`}`;
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + count);
    const origin = originOf(functionName, url);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + count);
  }
  const percent = (count: number): number => Math.round((count / total) * 1000) / 10;
  return {
    file,
    sampledMs: (profile.endTime - profile.startTime) / 1000,
    top: [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([frame, count]) => ({ frame, selfPercent: percent(count) })),
    byOrigin: [...byOrigin].sort((a, b) => b[1] - a[1]).map(([origin, count]) => ({ origin, selfPercent: percent(count) })),
  };
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) return url.slice(modules + "node_modules/".length);
  const dist = url.indexOf("/dist/");
  if (dist >= 0) return url.slice(dist + "/dist/".length);
  return url.replace(/^file:\/\//, "");
}

function originOf(functionName: string, url: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:")) return "node internals";
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules !== null) return modules[1] as string;
  if (url.includes("/dist/src/")) return `src/${/\/dist\/src\/([^/]+)/.exec(url)?.[1] ?? ""}`;
  if (url.includes("/dist/gen/")) return "gen";
  return "other";
}
