// Scenario "inventory": what a node's inventory costs the server. A real server (in this process, each store
// in turn) on loopback, called over gRPC: Registers of new nodes with no inventory and with a 16-GPU,
// 200-model one, and beats that each make a committed change (draining toggled, no inventory; or a model's
// loaded flag toggled, the whole inventory sent). Reported per operation and as a ratio to the run's own
// no-inventory baseline, so the machine's speed cancels out.

import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { v4 } from "uuid";
import { AgentRegistry, type HeartbeatRequest, HeartbeatRequestSchema, type Inventory, InventorySchema } from "../gen/registry/v1/registry_pb.js";
import { SERVER_DEFAULTS, type StoreKind } from "../src/config/index.js";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { SERVER_MODULES } from "./paths.js";
import type { BenchContext } from "./context.js";

export interface InventoryCostRow {
  readonly store: StoreKind;
  readonly operation: "register" | "beat with change";
  /** Mean wall time per operation (ms), with `concurrency` in flight. */
  readonly baselineMs: number;
  readonly withInventoryMs: number;
  readonly ratio: number;
}

export interface InventoryCostResult {
  readonly gpus: number;
  readonly models: number;
  /** Bytes of one inventory in protobuf binary. */
  readonly inventoryBytes: number;
  readonly registers: number;
  readonly beats: number;
  readonly concurrency: number;
  readonly rows: readonly InventoryCostRow[];
}

const GPUS = 16;
const MODELS = 200;
const CONCURRENCY = 16;

export function bigInventory(loadedFirst: boolean): Inventory {
  return create(InventorySchema, {
    gpus: Array.from({ length: GPUS }, (_, index) => ({
      index,
      uuid: `GPU-${v4()}`,
      name: "NVIDIA A100-SXM4-80GB",
      memoryTotalBytes: 81920n * 2n ** 20n,
      memoryUsedBytes: 31744n * 2n ** 20n,
      utilizationPercent: 42,
      temperatureCelsius: 55,
    })),
    models: Array.from({ length: MODELS }, (_, i) => ({
      name: `model-${i}:${i % 7}b-instruct-q4_K_M`,
      digest: `sha256:${i.toString(16).padStart(64, "0")}`,
      sizeBytes: 4_920_753_328n,
      loaded: i === 0 ? loadedFirst : i < 4,
      vramBytes: i === 0 ? (loadedFirst ? 6_012_954_624n : 0n) : i < 4 ? 6_012_954_624n : 0n,
    })),
  });
}

export async function inventoryCost(ctx: BenchContext, stores: readonly StoreKind[], quick: boolean): Promise<InventoryCostResult> {
  const registers = quick ? 200 : 1000;
  const beats = quick ? 400 : 2000;
  const rows: InventoryCostRow[] = [];
  // The server as built (dist/src): its SQLite writer thread is a file beside it, which the bench build lacks.
  const { startServer } = (await import(pathToFileURL(join(SERVER_MODULES, "server", "server.js")).href)) as typeof import("../src/server/server.js");
  for (const store of stores) {
    const dataDir = await ctx.freshDir(`inventory-${store}`);
    const server = await startServer({
      ...SERVER_DEFAULTS,
      heartbeatIntervalMs: 30_000,
      agentTimeoutMs: 60_000,
      grpcListen: { host: "127.0.0.1", port: 0 },
      httpListen: { host: "127.0.0.1", port: 0 },
      dataDir,
      store,
      limits: { ...SERVER_DEFAULTS.limits, maxMessageBytes: 4 * 1024 * 1024, maxRegistrationsPerSecond: 1_000_000 },
    });
    try {
      const client = createClient(AgentRegistry, createGrpcTransport({ baseUrl: `http://${server.grpcAddress}` }));
      const registerAll = async (inventory: Inventory | undefined): Promise<{ ms: number; ids: string[] }> => {
        const ids = Array.from({ length: registers }, () => v4());
        const ms = await timed(ids, (id) => client.register({ agentId: id, hostname: `gpu-${id.slice(0, 8)}`, ipAddress: "10.0.0.7", inventory }));
        return { ms: ms / registers, ids };
      };
      // A warm-up round so both measured rounds see a warm JIT.
      await registerAll(undefined);
      const bare = await registerAll(undefined);
      const full = await registerAll(bigInventory(true));
      rows.push({ store, operation: "register", baselineMs: bare.ms, withInventoryMs: full.ms, ratio: full.ms / bare.ms });
      ctx.log(`  ${store}: Register ${bare.ms.toFixed(3)} ms bare, ${full.ms.toFixed(3)} ms with inventory (x${(full.ms / bare.ms).toFixed(2)})`);

      const beatMs = async (ids: readonly string[], change: (n: number) => { draining?: boolean; inventory?: Inventory }): Promise<number> => {
        const streams = ids.slice(0, CONCURRENCY);
        const perStream = Math.ceil(beats / streams.length);
        const started = performance.now();
        await Promise.all(
          streams.map(async (id) => {
            const requests = new Queue<HeartbeatRequest>();
            const responses = client.heartbeat(requests.stream())[Symbol.asyncIterator]();
            for (let n = 0; n <= perStream; n++) {
              requests.push(create(HeartbeatRequestSchema, { agentId: id, seq: BigInt(n + 1), ...change(n) }));
              await responses.next();
            }
            requests.end();
            await responses.return?.();
          }),
        );
        return (performance.now() - started) / (streams.length * (perStream + 1));
      };
      const draining = await beatMs(bare.ids, (n) => ({ draining: n % 2 === 0 }));
      const inventories = [bigInventory(false), bigInventory(true)];
      const loaded = await beatMs(full.ids, (n) => ({ inventory: inventories[n % 2] as Inventory }));
      rows.push({ store, operation: "beat with change", baselineMs: draining, withInventoryMs: loaded, ratio: loaded / draining });
      ctx.log(`  ${store}: beat with change ${draining.toFixed(3)} ms (draining), ${loaded.toFixed(3)} ms (a model loaded/unloaded) (x${(loaded / draining).toFixed(2)})`);
    } finally {
      await server.close();
    }
  }
  return {
    gpus: GPUS,
    models: MODELS,
    inventoryBytes: toBinary(InventorySchema, bigInventory(true)).length,
    registers,
    beats,
    concurrency: CONCURRENCY,
    rows,
  };
}

/** Runs `call` for every item, CONCURRENCY at a time; resolves with the wall time in ms. */
async function timed<T>(items: readonly T[], call: (item: T) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await call(items[next++] as T);
    }),
  );
  return performance.now() - started;
}

/** Requests fed by push(), read as an async generator (what a Connect client stream takes). */
class Queue<T> {
  private readonly items: T[] = [];
  private waiting: ((item: T | undefined) => void) | undefined;
  private ended = false;

  push(item: T): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting(item);
    else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    this.waiting?.(undefined);
  }

  async *stream(): AsyncGenerator<T> {
    for (;;) {
      const item = this.items.shift() ?? (this.ended ? undefined : await new Promise<T | undefined>((resolve) => (this.waiting = resolve)));
      if (item === undefined) return;
      yield item;
    }
  }
}

/** The table for BENCHMARKS.md. */
export function inventoryTable(result: InventoryCostResult): string {
  const lines = [
    `${result.gpus} GPUs, ${result.models} models (${(result.inventoryBytes / 1024).toFixed(1)} KB in protobuf); ${result.registers} Registers and ${result.beats} beats per row, ${result.concurrency} in flight`,
    "",
    "| store | operation | no inventory (ms) | with inventory (ms) | ratio |",
    "|---|---|---:|---:|---:|",
    ...result.rows.map((row) => `| ${row.store} | ${row.operation} | ${row.baselineMs.toFixed(3)} | ${row.withInventoryMs.toFixed(3)} | ${row.ratio.toFixed(2)}x |`),
  ];
  return lines.join("\n");
}
