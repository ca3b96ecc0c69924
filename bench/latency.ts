// Latency samples kept whole (a growable Float64Array, not a lossy histogram) and summarised exactly:
// at 10 000 beats/s a 30 s window is 300 000 samples, 2.4 MB.

export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Beyond this many samples the rest are dropped (the count still counts them). */
const MAX_SAMPLES = 20_000_000;

export class Samples {
  private values = new Float64Array(1024);
  private length = 0;
  private dropped = 0;

  add(value: number): void {
    if (this.length === this.values.length) {
      if (this.length >= MAX_SAMPLES) {
        this.dropped++;
        return;
      }
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }

  get count(): number {
    return this.length + this.dropped;
  }

  reset(): void {
    this.length = 0;
    this.dropped = 0;
  }

  summary(): LatencySummary {
    return summarize(this.values.subarray(0, this.length), this.count);
  }
}

export function summarize(values: ArrayLike<number>, count = values.length): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { count, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  let sum = 0;
  for (const value of sorted) sum += value;
  const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number;
  return { count, mean: sum / n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: sorted[n - 1] as number };
}
