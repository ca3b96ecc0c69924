// Reads the Prometheus text format the server's /metrics answers with: sample values by name and labels,
// sums over labels, and quantiles estimated from a histogram's cumulative buckets.

export type Labels = Readonly<Record<string, string>>;

export interface PromSample {
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
}

export class PromText {
  private constructor(readonly samples: readonly PromSample[]) {}

  static parse(text: string): PromText {
    const samples: PromSample[] = [];
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
      if (match === null) continue;
      const labels: Record<string, string> = {};
      for (const pair of (match[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, "$1");
      }
      samples.push({ name: match[1] as string, labels, value: Number(match[4]) });
    }
    return new PromText(samples);
  }

  /** The sum of every sample of `name` whose labels include `labels`; 0 when there is none. */
  sum(name: string, labels: Labels = {}): number {
    let total = 0;
    for (const sample of this.samples) {
      if (sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)) {
        total += sample.value;
      }
    }
    return total;
  }

  /** One sample's value, or undefined. */
  value(name: string, labels: Labels = {}): number | undefined {
    const sample = this.samples.find(
      (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
    );
    return sample?.value;
  }

  /** Cumulative bucket counts of histogram `name` (upper bound -> count), sorted by bound. */
  buckets(name: string): Array<{ le: number; count: number }> {
    return this.samples
      .filter((s) => s.name === `${name}_bucket`)
      .map((s) => ({ le: s.labels["le"] === "+Inf" ? Infinity : Number(s.labels["le"]), count: s.value }))
      .sort((a, b) => a.le - b.le);
  }
}

/**
 * The q-quantile of the observations that fell between two scrapes of the same histogram, by linear
 * interpolation inside the bucket (as Prometheus' histogram_quantile does); undefined without observations.
 */
export function histogramQuantile(
  before: Array<{ le: number; count: number }>,
  after: Array<{ le: number; count: number }>,
  q: number,
): number | undefined {
  const counts = after.map((bucket) => ({
    le: bucket.le,
    count: bucket.count - (before.find((b) => b.le === bucket.le)?.count ?? 0),
  }));
  const total = counts.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bucket of counts) {
    if (bucket.count >= rank) {
      if (bucket.le === Infinity) return lowerBound;
      const inBucket = bucket.count - lowerCount;
      return inBucket <= 0 ? bucket.le : lowerBound + ((bucket.le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = bucket.le;
    lowerCount = bucket.count;
  }
  return lowerBound;
}
