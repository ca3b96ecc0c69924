// Lets pending promise callbacks (store commits, their group-commit turn, acknowledgements) run: a few
// turns of the event loop, no timers.

const TURNS = 5;

export async function settle(): Promise<void> {
  for (let turn = 0; turn < TURNS; turn++) await new Promise((resolve) => setImmediate(resolve));
}
