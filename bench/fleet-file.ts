// Writes an agents.json of N agents in the Rust prototype's format (src/store/agents-file-format.ts,
// test/fixtures/prototype-agents.json): a bare JSON array, snake_case keys, "Online"/"Offline", RFC 3339
// times with nanoseconds as chrono writes them, ollama_version sometimes null. Addresses are loopback
// strings: nothing ever connects to them.

import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { BENCH_OLLAMA_VERSION } from "./protocol.js";

export interface FleetFile {
  readonly bytes: number;
  readonly ids: readonly string[];
}

/**
 * `allOnline`: every agent Online with a fresh last_heartbeat and the version the load generator's first beat
 * reports, so that a beat changes nothing durable (a fleet to beat against, not to restore).
 */
export async function writeFleetFile(path: string, agents: number, nowMs: number, allOnline = false): Promise<FleetFile> {
  const rows = [];
  const ids: string[] = [];
  for (let i = 0; i < agents; i++) {
    const last = new Date(nowMs - (allOnline ? 0 : (i % 30) * 1000)).toISOString().replace("Z", "123456Z");
    const id = randomUUID();
    ids.push(id);
    rows.push({
      id,
      hostname: `gpu-node-${String(i).padStart(5, "0")}`,
      ip_address: `127.1.${(i >> 8) & 255}.${i & 255}`,
      port: 11434,
      ollama_version: allOnline ? BENCH_OLLAMA_VERSION : i % 50 === 0 ? null : "0.1.32",
      status: i % 20 === 0 && !allOnline ? "Offline" : "Online",
      last_heartbeat: last,
      registered_at: "2024-04-30T08:15:42.987654321Z",
    });
  }
  const text = `${JSON.stringify(rows, null, 2)}\n`;
  await writeFile(path, text, { mode: 0o600 });
  return { bytes: Buffer.byteLength(text), ids };
}
