import { describe, expect, it } from "vitest";
import { DeadlineHeap } from "../../src/registry/deadline-heap.js";

/** A small seeded PRNG (mulberry32), so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The reference: every key and its deadline, sorted when asked. */
function earliest(reference: Map<number, number>): number | undefined {
  return [...reference.values()].sort((a, b) => a - b)[0];
}

function drain(heap: DeadlineHeap<number>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let next = heap.peek(); next !== undefined; next = heap.peek()) {
    out.push([next.key, next.deadline]);
    heap.delete(next.key);
  }
  return out;
}

describe("DeadlineHeap", () => {
  it("is empty until a deadline is set", () => {
    const heap = new DeadlineHeap<string>();
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
  });

  it("hands out keys in deadline order", () => {
    const heap = new DeadlineHeap<string>();
    heap.set("c", 30);
    heap.set("a", 10);
    heap.set("b", 20);
    expect(heap.peek()).toMatchObject({ key: "a", deadline: 10 });
    heap.delete("a");
    expect(heap.peek()).toMatchObject({ key: "b", deadline: 20 });
  });

  it("moves a key when its deadline is set again, keeping one entry per key", () => {
    const heap = new DeadlineHeap<string>();
    heap.set("a", 10);
    heap.set("b", 20);
    heap.set("a", 30);
    expect(heap.size).toBe(2);
    expect(heap.peek()).toMatchObject({ key: "b", deadline: 20 });
    heap.set("a", 5);
    expect(heap.peek()).toMatchObject({ key: "a", deadline: 5 });
  });

  it("ignores the deletion of a key it does not hold", () => {
    const heap = new DeadlineHeap<string>();
    heap.set("a", 10);
    heap.delete("zzz");
    expect(heap.size).toBe(1);
    expect(heap.peek()).toMatchObject({ key: "a", deadline: 10 });
  });

  it.each([1, 7, 2026])("agrees with a sorted reference over 2000 random set/move/delete operations (seed %i)", (seed) => {
    const random = prng(seed);
    const heap = new DeadlineHeap<number>();
    const reference = new Map<number, number>();
    for (let op = 0; op < 2000; op++) {
      const key = Math.floor(random() * 64);
      // A narrow range of deadlines, so ties are common.
      const deadline = Math.floor(random() * 500);
      const roll = random();
      if (roll < 0.6) {
        heap.set(key, deadline);
        reference.set(key, deadline);
      } else if (roll < 0.9) {
        heap.delete(key);
        reference.delete(key);
      } else {
        // Pop the earliest, as the tracker does when a deadline passes.
        const next = heap.peek();
        if (next !== undefined) {
          heap.delete(next.key);
          reference.delete(next.key);
        }
      }
      expect(heap.size, `size after op ${op}`).toBe(reference.size);
      const next = heap.peek();
      expect(next?.deadline, `earliest deadline after op ${op}`).toBe(earliest(reference));
      if (next !== undefined) expect(reference.get(next.key), `key of the earliest after op ${op}`).toBe(next.deadline);
    }
    const drained = drain(heap);
    expect(drained.map(([, deadline]) => deadline)).toEqual([...reference.values()].sort((a, b) => a - b));
    expect(new Map(drained)).toEqual(reference);
  });
});
