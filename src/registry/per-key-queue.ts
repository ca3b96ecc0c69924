// Runs tasks one at a time per key (per agent) and in the order they were queued, while tasks of different
// keys run concurrently: a Register, a status change and a stream's presence for one agent never race each
// other to the store. Queues that empty are dropped, so an idle fleet holds nothing here.

export class PerKeyQueue<K> {
  /** The last task queued per key; the key is removed once that task has finished. */
  private readonly tails = new Map<K, Promise<unknown>>();

  /** Whether a task of `key` is queued or running. */
  busy(key: K): boolean {
    return this.tails.has(key);
  }

  /** Runs `task` after every task queued before it for `key`; its outcome is the returned promise's. */
  run<T>(key: K, task: () => Promise<T> | T): Promise<T> {
    // Tails never reject: a failed task does not stop the ones behind it (its caller has its outcome).
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves once every task queued so far (for any key) has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}
