// Lets pending promise callbacks (store commits, acknowledgements) run: one turn of the event loop, no timers.

export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
