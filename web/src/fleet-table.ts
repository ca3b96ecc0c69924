// The fleet table: one row per agent, keyed by id and changed in place, so an event redraws one row and a
// snapshot of a thousand builds each row once. Rows keep ListAgents' order; the filter hides rows rather
// than removing them. Status is told by text and symbol as well as colour.

import { type Agent, AgentStatus } from "../../gen/registry/v1/registry_pb.js";
import type { Fleet, FleetChanges } from "./fleet.js";
import type { AgentFilter } from "./filter.js";
import { addressText, ageText, gpuDetails, gpuLines, labelPairs, loadedModels, millisOf } from "./format.js";

interface Row {
  readonly tr: HTMLTableRowElement;
  readonly hostname: HTMLTableCellElement;
  readonly address: HTMLTableCellElement;
  readonly status: HTMLTableCellElement;
  readonly age: HTMLTableCellElement;
  readonly version: HTMLTableCellElement;
  readonly labels: HTMLTableCellElement;
  readonly gpus: HTMLTableCellElement;
  readonly models: HTMLTableCellElement;
  lastBeatMs: number | undefined;
}

export interface Counts {
  readonly total: number;
  readonly shown: number;
  readonly online: number;
  readonly offline: number;
  readonly draining: number;
  readonly held: number;
}

export class FleetTable {
  private readonly rows = new Map<string, Row>();

  constructor(private readonly body: HTMLTableSectionElement) {}

  /** Redraws what changed; with `refilter`, also which rows the filter shows. */
  render(fleet: Fleet, changes: FleetChanges, filter: AgentFilter, refilter: boolean, nowMs: number): void {
    for (const id of changes.removed) {
      this.rows.get(id)?.tr.remove();
      this.rows.delete(id);
    }
    for (const id of changes.changed) {
      const agent = fleet.get(id);
      if (agent === undefined) continue;
      const row = this.rows.get(id) ?? this.create(id);
      fill(row, agent, nowMs);
      row.tr.hidden = !filter(agent);
    }
    if (changes.reordered) this.order(fleet.inOrder());
    if (refilter) {
      for (const agent of fleet.inOrder()) {
        const row = this.rows.get(agent.id);
        if (row !== undefined) row.tr.hidden = !filter(agent);
      }
    }
  }

  /** The last-beat ages, once a second. */
  tick(nowMs: number): void {
    for (const row of this.rows.values()) setText(row.age, ageText(row.lastBeatMs, nowMs));
  }

  counts(fleet: Fleet): Counts {
    let shown = 0;
    let online = 0;
    let draining = 0;
    let held = 0;
    for (const agent of fleet.inOrder()) {
      if (this.rows.get(agent.id)?.tr.hidden === false) shown++;
      if (agent.status === AgentStatus.ONLINE) online++;
      if (agent.draining) draining++;
      if (agent.livenessHeld) held++;
    }
    return { total: fleet.size, shown, online, offline: fleet.size - online, draining, held };
  }

  private create(id: string): Row {
    const tr = document.createElement("tr");
    tr.dataset["agentId"] = id;
    const cell = (name: string): HTMLTableCellElement => {
      const td = tr.insertCell();
      td.className = name;
      return td;
    };
    const hostname = document.createElement("th");
    hostname.scope = "row";
    hostname.className = "hostname";
    tr.append(hostname);
    const row: Row = {
      tr,
      hostname,
      address: cell("address"),
      status: cell("status"),
      age: cell("age"),
      version: cell("version"),
      labels: cell("labels"),
      gpus: cell("gpus"),
      models: cell("models"),
      lastBeatMs: undefined,
    };
    this.rows.set(id, row);
    return row;
  }

  /** Puts the rows in `agents`' order, moving only those out of place. */
  private order(agents: readonly Agent[]): void {
    let cursor = this.body.firstElementChild;
    for (const agent of agents) {
      const tr = this.rows.get(agent.id)?.tr;
      if (tr === undefined) continue;
      if (tr === cursor) cursor = cursor.nextElementSibling;
      else this.body.insertBefore(tr, cursor);
    }
  }
}

function fill(row: Row, agent: Agent, nowMs: number): void {
  const online = agent.status === AgentStatus.ONLINE;
  row.tr.dataset["status"] = online ? "online" : "offline";
  setText(row.hostname, agent.hostname);
  row.hostname.title = agent.id;
  setText(row.address, addressText(agent));
  row.status.replaceChildren(
    badge(online ? "● ONLINE" : "○ OFFLINE", online ? "badge online" : "badge offline"),
    ...(agent.draining ? [badge("DRAINING", "badge draining", "takes no new work")] : []),
    ...(agent.livenessHeld
      ? [badge("HELD", "badge held", "past its timeout; kept ONLINE by the offline guard: treat as suspect")]
      : []),
    ...(online && !agent.streamConnected ? [badge("NO STREAM", "badge nostream", "no heartbeat stream open")] : []),
    ...(agent.reachable === false ? [badge("UNREACHABLE", "badge held", agent.statusMessage)] : []),
  );
  row.lastBeatMs = millisOf(agent.lastHeartbeat);
  setText(row.age, ageText(row.lastBeatMs, nowMs));
  setText(row.version, agent.ollamaVersion === "" ? "—" : agent.ollamaVersion);
  setText(row.labels, labelPairs(agent).join(" "));
  setLines(row.gpus, gpuLines(agent));
  row.gpus.title = gpuDetails(agent);
  const installed = agent.models.length;
  setLines(row.models, loadedModels(agent));
  row.models.title = installed === 0 ? "no models reported" : `${installed} installed: ${agent.models.map((model) => model.name).join(", ")}`;
}

/** One line per entry; "—" for none. */
function setLines(element: HTMLElement, lines: readonly string[]): void {
  setText(element, lines.length === 0 ? "—" : lines.join("\n"));
}

function badge(text: string, className: string, title?: string): HTMLSpanElement {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  if (title !== undefined) span.title = title;
  return span;
}

function setText(element: HTMLElement, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}
