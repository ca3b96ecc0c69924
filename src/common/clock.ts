// Time for the server and the node daemon: wall time for what people read and what is stored, a
// monotonic reading for every deadline and duration (it never steps with NTP or a resumed VM), and
// one-shot timers. Injected everywhere, so liveness and backoff run on fake time in tests.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Wall time: milliseconds since the Unix epoch. For timestamps only, never for deadlines. */
  now(): number;
  /** Milliseconds from an arbitrary origin that only moves forward at the rate of real time. */
  monotonic(): number;
  /** Runs `fn` once after `delayMs` (measured on the monotonic clock, as Node's timers are). */
  setTimer(delayMs: number, fn: () => void): Timer;
}

/** setTimeout cannot wait longer than 2^31-1 ms; a timer that fires early is re-armed by its owner. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * The real clock. `keepAlive: false` (the server's) makes timers that never keep the process alive on their
 * own; the node daemon's timers do, since waiting is all a daemon does between beats.
 */
export function systemClock(options: { keepAlive: boolean }): Clock {
  return {
    now: () => Date.now(),
    monotonic: () => performance.now(),
    setTimer(delayMs, fn) {
      const handle = setTimeout(fn, Math.min(Math.max(0, delayMs), MAX_DELAY_MS));
      if (!options.keepAlive) handle.unref();
      return { cancel: () => clearTimeout(handle) };
    },
  };
}

/** The server's clock: its timers never hold the process open. */
export const serverClock: Clock = systemClock({ keepAlive: false });
