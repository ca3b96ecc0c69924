// A stream's responses waiting for their reader: pushed as they are made, read in order as an async
// iterable, ended cleanly or with an error once what was pushed before has been read.

export class ResponseQueue<T> implements AsyncIterable<T> {
  private readonly queued: T[] = [];
  private ended: { readonly error: unknown } | "finished" | undefined;
  private wake: (() => void) | undefined;

  push(item: T): void {
    if (this.ended !== undefined) return;
    this.queued.push(item);
    this.notify();
  }

  finish(): void {
    this.ended ??= "finished";
    this.notify();
  }

  fail(error: unknown): void {
    this.ended ??= { error };
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.queued.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended === "finished") return;
      if (this.ended !== undefined) throw this.ended.error;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
