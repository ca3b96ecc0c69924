// The server's shutdown as an event open streams subscribe to. Not an AbortSignal: with thousands of
// streams, each subscribe and unsubscribe there walks the whole listener list; here both are O(1).

export class Shutdown {
  private readonly handlers = new Set<() => void>();
  private begun = false;

  get started(): boolean {
    return this.begun;
  }

  /** Runs `handler` once the shutdown starts (on the next microtask if it already has). Returns the unsubscribe. */
  onStart(handler: () => void): () => void {
    if (this.begun) {
      queueMicrotask(handler);
      return () => undefined;
    }
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** How many streams wait for the shutdown (for tests: nothing is left behind). */
  get subscribers(): number {
    return this.handlers.size;
  }

  start(): void {
    if (this.begun) return;
    this.begun = true;
    const handlers = [...this.handlers];
    this.handlers.clear();
    for (const handler of handlers) handler();
  }
}
