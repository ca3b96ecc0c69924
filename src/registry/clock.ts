// Time for the domain: wall-clock milliseconds and one-shot timers, injected so the liveness tracker runs
// on fake time in tests. Not a scheduler: callers own what they schedule.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once after `delayMs`; the timer never keeps the process alive on its own. */
  setTimer(delayMs: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(delayMs, fn) {
    // setTimeout cannot wait longer than 2^31-1 ms; a timer that fires early is re-armed by its owner.
    const handle = setTimeout(fn, Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
