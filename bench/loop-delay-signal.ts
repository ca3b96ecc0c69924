// Lets the orchestrator read a bare echo server's event-loop delay without an HTTP endpoint: on SIGUSR2
// the server prints "loop-delay p50=<ms> p99=<ms> max=<ms>" (since the previous SIGUSR2) and starts over.

import { monitorEventLoopDelay } from "node:perf_hooks";

const RESOLUTION_MS = 10;

export function reportLoopDelayOnSignal(): void {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  // Node records the whole interval between samples: the resolution is subtracted to leave the delay.
  const ms = (ns: number): string => Math.max(0, ns / 1e6 - RESOLUTION_MS).toFixed(2);
  process.on("SIGUSR2", () => {
    process.stdout.write(`loop-delay p50=${ms(histogram.percentile(50))} p99=${ms(histogram.percentile(99))} max=${ms(histogram.max)}\n`);
    histogram.reset();
  });
}
