// An indexed binary min-heap of deadlines by key: set, delete and peek in O(log n), so a beat moves one
// agent's deadline without touching the others (the shape of etcd's lease expiry queue).

interface Entry<K> {
  key: K;
  deadline: number;
  index: number;
}

export class DeadlineHeap<K> {
  private readonly heap: Entry<K>[] = [];
  private readonly byKey = new Map<K, Entry<K>>();

  get size(): number {
    return this.heap.length;
  }

  /** Sets (or moves) the deadline of `key`. */
  set(key: K, deadline: number): void {
    const entry = this.byKey.get(key);
    if (entry === undefined) {
      const added = { key, deadline, index: this.heap.length };
      this.heap.push(added);
      this.byKey.set(key, added);
      this.up(added.index);
      return;
    }
    const earlier = deadline < entry.deadline;
    entry.deadline = deadline;
    if (earlier) this.up(entry.index);
    else this.down(entry.index);
  }

  delete(key: K): void {
    const entry = this.byKey.get(key);
    if (entry === undefined) return;
    this.byKey.delete(key);
    const last = this.heap.pop() as Entry<K>;
    if (last === entry) return;
    last.index = entry.index;
    this.heap[entry.index] = last;
    this.up(last.index);
    this.down(last.index);
  }

  /** The earliest deadline and its key, if any. */
  peek(): { key: K; deadline: number } | undefined {
    return this.heap[0];
  }

  private up(index: number): void {
    const entry = this.heap[index] as Entry<K>;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = this.heap[parentIndex] as Entry<K>;
      if (parent.deadline <= entry.deadline) break;
      this.place(parent, index);
      index = parentIndex;
    }
    this.place(entry, index);
  }

  private down(index: number): void {
    const entry = this.heap[index] as Entry<K>;
    const length = this.heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && (this.heap[right] as Entry<K>).deadline < (this.heap[child] as Entry<K>).deadline) {
        child = right;
      }
      const smallest = this.heap[child] as Entry<K>;
      if (entry.deadline <= smallest.deadline) break;
      this.place(smallest, index);
      index = child;
    }
    this.place(entry, index);
  }

  private place(entry: Entry<K>, index: number): void {
    this.heap[index] = entry;
    entry.index = index;
  }
}
