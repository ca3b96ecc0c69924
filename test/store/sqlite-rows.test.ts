// The sweep that saves beat times in row order, a bounded number at a time (src/store/sqlite-rows.ts).

import { describe, expect, it } from "vitest";
import type { AgentId } from "../../src/registry/agent-id.js";
import { SqliteRows } from "../../src/store/sqlite-rows.js";

const id = (n: number): AgentId => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}` as AgentId;

function rowsOf(count: number): SqliteRows {
  const rows = new SqliteRows();
  for (let n = 1; n <= count; n++) rows.add(id(n), n);
  return rows;
}

/** Every agent waiting, with its beat time equal to its number. */
const waitingAll = (count: number): Map<AgentId, number> => new Map(Array.from({ length: count }, (_, n) => [id(n + 1), n + 1]));

describe("SqliteRows", () => {
  it("takes waiting beat times in row order, at most the limit, and goes on from there next time, wrapping around", () => {
    const rows = rowsOf(10);
    const waiting = waitingAll(10);

    expect(rows.sweep(waiting, 4).map(([, at]) => at)).toEqual([1, 2, 3, 4]);
    expect(rows.sweep(waiting, 4).map(([, at]) => at)).toEqual([5, 6, 7, 8]);
    expect(rows.sweep(waiting, 4).map(([, at]) => at)).toEqual([9, 10, 1, 2]);
  });

  it("skips rows with nothing waiting, and removed rows", () => {
    const rows = rowsOf(10);
    rows.remove(id(2));

    expect(rows.sweep(new Map([[id(2), 2], [id(3), 3], [id(7), 7]]), 10)).toEqual([[id(3), 3], [id(7), 7]]);
  });

  it("gives a row added again (removed, then registered anew) its new place, and only that one", () => {
    const rows = rowsOf(3);
    rows.remove(id(1));
    rows.add(id(1), rows.nextSeq(0));

    expect(rows.seqOf(id(1))).toBe(4);
    expect(rows.sweep(waitingAll(3), 10).map(([agent]) => agent)).toEqual([id(2), id(3), id(1)]);
  });

  it("forgets removed rows once they outnumber the live ones, and still sweeps every live one", () => {
    const rows = rowsOf(100);
    for (let n = 1; n <= 80; n++) rows.remove(id(n));

    expect(rows.sweep(waitingAll(100), 1000).map(([, at]) => at)).toEqual(Array.from({ length: 20 }, (_, n) => n + 81));
  });
});
