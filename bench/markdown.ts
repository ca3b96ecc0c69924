// The building blocks of the Markdown reports: a table, the two number formats every table uses, and how
// a load run's errors and connections are written.

import type { LoadRunResult } from "./load-run.js";

/** `digits` decimals; "n/a" for a number that was not measured (NaN, or null once a results file is read back). */
export const f = (value: number | null | undefined, digits = 1): string =>
  value === undefined || value === null || Number.isNaN(value) ? "n/a" : value.toFixed(digits);

/** Rounded, with thousands separators. */
export const n = (value: number): string => Math.round(value).toLocaleString("en-US");

export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((row) => `| ${row.join(" | ")} |`)].join("\n");
}

export function errors(r: LoadRunResult): string {
  const entries = Object.entries(r.errors);
  const text = entries.length === 0 ? "0" : entries.map(([code, count]) => `${count} ${code}`).join(", ");
  return r.skipped > 0 ? `${text}; ${n(r.skipped)} beats held back` : text;
}

export function connections(r: LoadRunResult): string {
  return r.connections === r.agents ? `${n(r.connections)} (1/agent)` : n(r.connections);
}
