// Turns one run's results into Markdown: the table printed at the end of a run and the generated block of
// BENCHMARKS.md (between its bench:generated markers), plus the short headline table for the README.

import type { LoadRunResult, Meanwhile } from "./load-run.js";
import { GENERATOR_STALL_MS, INTERFERENCE_LIMIT } from "./interference.js";
import { connections, errors, f, n, table } from "./markdown.js";
import { SERVER_CORE } from "./processes.js";
import type { LoopDelay } from "./protocol.js";
import type { BenchResults } from "./results-model.js";
import { coldStartTable, persistenceTable, stormTable } from "./store-tables.js";

/** "p99 / max" of an event-loop delay, in ms. */
function loopDelay(delay: LoopDelay): string {
  return `${f(delay.p99, 1)} / ${f(delay.max, 0)}`;
}

/** The event loops and the server's garbage collection while reads ran, as a sentence. */
function meanwhileText({ serverLoopDelayMs, generatorLoopDelayMs, gc }: Meanwhile): string {
  return (
    `Event-loop delay meanwhile (p99 / max): server ${loopDelay(serverLoopDelayMs)} ms, load generator ${loopDelay(generatorLoopDelayMs)} ms; ` +
    `server GC ${f(gc.seconds * 1000, 0)} ms in all, ${gc.over100ms} collections over 100 ms.`
  );
}

function loadRows(rows: readonly LoadRunResult[]): string {
  return table(
    ["agents", "connections", "server", "beats/s", "ack p50 ms", "ack p99 ms", "ack max ms", "errors", "server CPU %", "µs CPU/beat", "RSS MiB (idle)", "KB/stream", "server loop delay p99 / max ms", "load gen CPU %", "load gen loop delay p99 / max ms", "server core irq % / others' CPU %"],
    rows.map((r) => [
      n(r.agents),
      connections(r),
      r.label,
      n(r.beatsPerSecond),
      f(r.ack.p50, 2),
      f(r.ack.p99, 1),
      f(r.ack.max, 0),
      errors(r),
      f(r.serverCpuPercent, 0),
      f(r.cpuMicrosPerBeat, 1),
      `${f(r.rssMiB, 0)} (${f(r.idleRssMiB, 0)})`,
      f(r.kbPerStream, 1),
      r.serverLoopDelayMs === undefined ? "—" : loopDelay(r.serverLoopDelayMs),
      f(r.generatorCpuPercent, 0),
      loopDelay(r.generatorLoopDelayMs),
      `${f(r.cores[SERVER_CORE]?.interruptPercent, 0)} / ${r.interferencePercent > INTERFERENCE_LIMIT ? `**${f(r.interferencePercent, 0)}**` : f(r.interferencePercent, 0)}`,
    ]),
  );
}

/** "agent-registry at 10,000 on 10: 44.1-48.3 µs/beat, ..." over a run's windows. */
function windowRange(r: LoadRunResult): string {
  const figures = r.windowFigures ?? [];
  const range = (pick: (w: (typeof figures)[number]) => number, digits: number): string => {
    const values = figures.map(pick);
    return `${f(Math.min(...values), digits)}-${f(Math.max(...values), digits)}`;
  };
  return (
    `${r.label} at ${n(r.agents)} on ${n(r.connections)}, ${figures.length} windows: ${range((w) => w.cpuMicrosPerBeat, 1)} µs/beat, ` +
    `${range((w) => w.kbPerStream, 1)} KB/stream, ack p99 ${range((w) => w.ackP99Ms, 1)} ms`
  );
}

/** Which of the windows measured were kept, for the sentence on windows measured again. */
function kept(r: LoadRunResult): string {
  const windows = r.windowFigures?.length ?? 1;
  return windows === 1 ? `${r.windowAttempts} windows measured, the least disturbed kept` : `${r.windowAttempts} windows measured for ${windows}`;
}

export function markdownReport(results: BenchResults): string {
  const out: string[] = [];
  const m = results.machine;
  out.push(
    `Run ${results.startedAt} (${results.quick ? "quick" : "full"}, ${f(results.durationSeconds / 60, 1)} min): \`${results.command}\`  `,
    `Machine: ${m.nproc} cores (${m.cpuModel}), ${f(m.memGiB, 0)} GiB, Node ${m.node}, Linux ${m.kernel}; ` +
      `${m.pinned ? "server pinned to core 1, load generator to core 0 (taskset)" : "no CPU pinning"}; etcd ${m.etcd ?? "not available"}.`,
    "",
  );
  if (results.notes.length > 0) out.push(...results.notes.map((note) => `- ${note}`), "");

  out.push("### Targets", "", table(["target", "goal", "measured", "met"], results.targets.map((t) => [t.target, t.goal, t.note === undefined ? t.measured : `${t.measured} — ${t.note}`, t.met === undefined ? "not run" : t.met ? "yes" : "**no**"])), "");

  if (results.steady.length > 0) {
    out.push("### 1. Steady beats (1 beat/s per agent) and the baselines", "", loadRows(results.steady), "");
  }
  const skewed = [...results.steady, ...results.ceiling].filter((r) => r.interferencePercent > INTERFERENCE_LIMIT);
  if (skewed.length > 0) {
    out.push(
      `Rows with the last column in bold were measured while other processes on this machine used more than ${INTERFERENCE_LIMIT}% ` +
        `of a core (the least disturbed of up to 5 windows is kept): ${skewed.map((r) => `${r.label} at ${n(r.agents)}`).join(", ")}. Treat them with care.`,
      "",
    );
  }
  const several = results.steady.filter((r) => r.windowFigures !== undefined);
  if (several.length > 0) {
    out.push(
      `Medians of several windows on the same load (CPU from the window with the median CPU per beat, memory from the one with the ` +
        `median KB per stream, acks from the one with the median ack p99; errors summed), with the range of the windows: ` +
        `${several.map(windowRange).join("; ")}.`,
      "",
    );
  }
  const remeasured = [...results.steady, ...results.ceiling].filter((r) => r.windowAttempts > (r.windowFigures?.length ?? 1));
  if (remeasured.length > 0) {
    out.push(
      `Measured again because another process used more than ${INTERFERENCE_LIMIT}% of a core or the load generator's own event loop ` +
        `stalled over ${GENERATOR_STALL_MS} ms (which delays the acks it times, not the server's): ` +
        `${remeasured.map((r) => `${r.label} at ${n(r.agents)} on ${n(r.connections)} (${kept(r)})`).join(", ")}.`,
      "",
    );
  }
  if (results.comparisons.length > 0) {
    out.push(
      "### Ratios (ours ÷ baseline; lower is better except for ceiling beats/s)",
      "",
      table(
        ["comparison", "agents", "connections", "ours", "baseline", "ratio"],
        results.comparisons.map((c) => [c.what, n(c.agents), n(c.connections), f(c.ours, 1), f(c.theirs, 1), `${f(c.ratio, 2)}×`]),
      ),
      "",
    );
  }
  if (results.ceiling.length > 0) {
    const w = results.ceiling[0]?.load;
    out.push(`### 2. Ceiling (1 000 streams, each with ${w?.kind === "closed" ? w.window : "?"} beat(s) in flight, next beat on ack)`, "", loadRows(results.ceiling), "");
  }
  if (results.storms.length > 0) {
    out.push(
      "### 3. Registration storm (durable acks), json vs sqlite",
      "",
      stormTable(results.storms),
      "",
      "Each row is its own server with an empty data directory; × json is the registrations/s against json's at the same size. " +
        "The bare grpc-js echo answers Register at once: its row is the load generator's own ceiling.",
      "",
    );
  }
  const r = results.reads;
  if (r !== undefined) {
    out.push(
      `### 4. Reads during steady load (${n(r.agents)} agents beating)`,
      "",
      table(
        ["read", "calls", "size", "p50 ms", "p99 ms", "max ms"],
        [
          [`ListAgents page_size ${r.grpcPage.pageSize}, gRPC`, n(r.grpcPage.calls), `${f(r.grpcPage.bytesPerPage / 1024, 0)} KB`, f(r.grpcPage.latency.p50, 2), f(r.grpcPage.latency.p99, 2), f(r.grpcPage.latency.max, 1)],
          [`ListAgents page_size 0 (all ${n(r.connectFull.agentsReturned)}), Connect JSON`, n(r.connectFull.calls), `${f(r.connectFull.bytes / 1e6, 2)} MB`, f(r.connectFull.latency.p50, 1), f(r.connectFull.latency.p99, 1), f(r.connectFull.latency.max, 1)],
        ],
      ),
      "",
      ...(results.coldStart?.idlePages ?? []).map(
        (idle) =>
          `The same page of 1 000 on an idle server (${n(idle.agents)} agents, ${idle.store}, nothing beating; cold-start scenario): p50 ${f(idle.latency.p50, 2)} ms, p99 ${f(idle.latency.p99, 2)} ms.  `,
      ),
      `Beats meanwhile: ${n(r.beatsPerSecondDuringReads)}/s, ack p50 ${f(r.ackDuringReads.p50, 2)} ms, p99 ${f(r.ackDuringReads.p99, 1)} ms, max ${f(r.ackDuringReads.max, 0)} ms; server CPU ${f(r.serverCpuPercent, 0)}%; read errors ${r.errors}. ` +
        meanwhileText(r) +
        ((r.rounds ?? 1) > 1 ? ` The reads ran ${r.rounds ?? 1} times, as the load generator's loop stalled over ${GENERATOR_STALL_MS} ms; the least stalled round is shown.` : ""),
      "",
    );
  }
  const rh = results.readHeavy;
  if (rh !== undefined) {
    out.push(
      `### 4b. Read-heavy (${n(rh.agents)} agents beating; ${rh.spec.balancers} load balancers, ${rh.spec.watchers} watchers, ${rh.spec.seconds} s)`,
      "",
      table(
        ["what", "count", "p50 ms", "p99 ms", "max ms"],
        [
          [`ListAgents ready=true (all, ${n(rh.lists.agentsReturned)} agents, ${f(rh.lists.bytes / 1e6, 2)} MB), Connect JSON, each balancer 1/s`, n(rh.lists.calls), f(rh.lists.latency.p50, 1), f(rh.lists.latency.p99, 1), f(rh.lists.latency.max, 1)],
          [`beat acks meanwhile (${n(rh.beatsPerSecond)}/s)`, "", f(rh.ackDuringReads.p50, 2), f(rh.ackDuringReads.p99, 1), f(rh.ackDuringReads.max, 0)],
          [`watch lag: ADDED event minus Register ack (${rh.spec.registersPerSecond} Registers/s)`, `${n(rh.eventsExpected - rh.eventsMissing)}/${n(rh.eventsExpected)}`, f(rh.watchLag.p50, 1), f(rh.watchLag.p99, 1), f(rh.watchLag.max, 1)],
        ],
      ),
      "",
      `Every watcher had its snapshot of the fleet ${f(rh.snapshotMs / 1000, 1)} s after the ${rh.spec.watchers} watches opened; ${rh.watchersCutOff} cut off; server CPU ${f(rh.serverCpuPercent, 0)}%; errors ${rh.errors}. ` +
        meanwhileText(rh),
      "",
    );
  }
  const c = results.coldStart;
  if (c !== undefined) {
    out.push(`### 5. Cold start, json vs sqlite (median of ${c.runs} starts each)`, "", coldStartTable(c), "");
  }
  const d = results.detection;
  if (d !== undefined) {
    const x = d.result;
    out.push(
      `### 6. Detection (${n(x.agents)} agents, HEARTBEAT_INTERVAL=${x.heartbeatIntervalS} AGENT_TIMEOUT=${x.agentTimeoutS}; ${n(x.silenced)} go silent, streams kept open)`,
      "",
      table(
        ["seen OFFLINE", "missed", "false offlines", "late p50 ms", "late p99 ms", "late max ms", "server histogram p50 / p99 ms", "last_heartbeat ≠ last ack"],
        [[`${n(x.detected)}/${n(x.silenced)}`, n(x.missed), n(x.falseOffline), f(x.lateness.p50, 0), f(x.lateness.p99, 0), f(x.lateness.max, 0), `${f(x.serverLateness.p50Ms, 0)} / ${f(x.serverLateness.p99Ms, 0)} (${n(x.serverLateness.count)} obs.)`, n(x.lastHeartbeatMismatches)]],
      ),
      "",
      `Lateness is the watch event's arrival minus (the last ack's server_time + AGENT_TIMEOUT), so it includes delivery to the watcher. The offline guard is on with its defaults and held ${n(x.held)} nodes. The fleet meanwhile: ${n(d.run.beatsPerSecond)} beats/s, ack p99 ${f(d.run.ack.p99, 1)} ms, errors ${errors(d.run)}.`,
      "",
    );
  }
  const h = results.offlineHold;
  if (h !== undefined) {
    const x = h.result;
    const gauge = (active: number | undefined, nodes: number | undefined): string => `${active === 1 ? "active" : active === 0 ? "off" : "n/a"}, ${nodes === undefined ? "n/a" : n(nodes)} held`;
    out.push(
      `### 6b. Offline guard (${n(x.agents)} agents, same interval and timeout, guard defaults; ${n(x.silenced)} go silent at once, then ${n(x.resumed)} of them beat again)`,
      "",
      table(
        ["phase", "OFFLINE", "held (watch)", "metrics", "/readyz"],
        [
          [`${f(x.heldForMs / 1000, 0)} s of silence`, n(x.offlineDuringHold), `${n(x.heldSeen)}/${n(x.silenced)}`, gauge(x.guardActive, x.heldGauge), `${x.readyz.status}: ${x.readyz.holdLine ?? "(no hold line)"}`],
          [
            `${n(x.resumed)} beat again`,
            `${n(x.expiredAfter)}/${n(x.stillSilent)} still silent, p50 ${f(x.release.p50, 0)} / max ${f(x.release.max, 0)} ms after; ${n(x.falseOffline)} false`,
            "",
            gauge(x.guardActiveAfter, x.heldGaugeAfter),
            "",
          ],
        ],
      ),
      "",
      `Without the guard all ${n(x.silenced)} would be OFFLINE ${x.agentTimeoutS} s after their last beat (section 6 shows the detection is otherwise exact). The hold ends when the silent share falls back under the threshold; the times after are measured from the moment the others may beat again, so they include up to one interval before enough of them have. The fleet meanwhile: ${n(h.run.beatsPerSecond)} beats/s, ack p99 ${f(h.run.ack.p99, 1)} ms, errors ${errors(h.run)}.`,
      "",
    );
  }
  const persisted = results.steady.filter((row) => row.persistence !== undefined);
  if (persisted.length > 0) {
    out.push(
      "### 7. Persistence during steady beats",
      "",
      table(
        ["agents", "connections", "file writes/s", "agents.json", "bytes/s (writes × size)", "block-layer write bytes/s (/proc io)"],
        persisted.map((row) => [
          n(row.agents),
          connections(row),
          f(row.persistence?.writesPerSecond, 2),
          `${f((row.persistence?.fileBytes ?? 0) / 1e6, 2)} MB`,
          `${f((row.persistence?.bytesPerSecond ?? 0) / 1e6, 2)} MB/s`,
          row.persistence?.ioWriteBytesPerSecond === undefined ? "n/a" : `${f(row.persistence.ioWriteBytesPerSecond / 1e6, 2)} MB/s`,
        ]),
      ),
      "",
    );
  }
  if (results.persistence.length > 0) {
    // Each agent beats once per heartbeat interval (store-persistence.ts).
    const load = results.persistence[0]?.load;
    const intervalS = load?.kind === "steady" ? load.intervalMs / 1000 : undefined;
    out.push(
      `### 8. Steady persistence cost, json vs sqlite (HEARTBEAT_INTERVAL=${f(intervalS, 0)}, every agent beating every ${f(intervalS, 0)} s, fleet preloaded)`,
      "",
      persistenceTable(results.persistence),
      "",
      "Bytes/s: what reached the block layer (`/proc/<pid>/io` write_bytes of the server, its SQLite writer thread included); " +
        "store KB/s is writes × the bytes of the last write from `/metrics` (json: the whole file; sqlite: the rows' values, without page overhead). " +
        "× json: block-layer bytes/s against json's at the same size; × smallest: against the same store at the smallest fleet.",
      "",
    );
  }
  if (results.profiled !== undefined) {
    out.push("### Profile run (fleet preloaded from agents.json, server under node --cpu-prof)", "", loadRows([results.profiled]), "");
  }
  for (const profile of results.profiles) {
    out.push(
      `### CPU profile: ${profile.file.split("/").slice(-2).join("/")} (${f(profile.sampledMs / 1000, 0)} s sampled)`,
      "",
      table(["origin", "self %"], profile.byOrigin.slice(0, 12).map((o) => [o.origin, f(o.selfPercent)])),
      "",
      table(["top frames (self time)", "self %"], profile.top.slice(0, 20).map((t) => [`\`${t.frame}\``, f(t.selfPercent)])),
      "",
    );
  }
  return out.join("\n");
}
