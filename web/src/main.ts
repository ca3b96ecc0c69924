// The fleet dashboard: watches the registry (WatchAgents) and keeps the table, the counts and the
// connection line current. Read-only: it never calls anything that writes.

import "./style.css";
import { Code } from "@connectrpc/connect";
import { Fleet } from "./fleet.js";
import { type AgentFilter, parseFilter } from "./filter.js";
import { type ConnectionState, FleetWatch } from "./fleet-watch.js";
import { type Counts, FleetTable } from "./fleet-table.js";
import { forgetToken, readToken, saveToken } from "./token-store.js";

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
};

const fleet = new Fleet();
const table = new FleetTable(element<HTMLTableElement>("fleet").tBodies[0] as HTMLTableSectionElement);
const connection = element<HTMLParagraphElement>("connection");
const counts = element<HTMLParagraphElement>("counts");
const empty = element<HTMLParagraphElement>("empty");
const filterBox = element<HTMLInputElement>("filter");
const tokenForm = element<HTMLFormElement>("token-form");
const tokenInput = element<HTMLInputElement>("token");
const tokenReason = element<HTMLParagraphElement>("token-reason");

let filter: AgentFilter = parseFilter(filterBox.value);
let refilter = false;
let frame: number | undefined;

/** Redraws on the next frame: many events within one frame cost one redraw. */
function schedule(): void {
  frame ??= requestAnimationFrame(() => {
    frame = undefined;
    const started = performance.now();
    const changes = fleet.take();
    table.render(fleet, changes, filter, refilter, Date.now());
    refilter = false;
    showCounts(table.counts(fleet));
    // Read by the browser test (BENCHMARKS.md reports it): how long a redraw of this many rows took.
    performance.measure("fleet-render", { start: started, detail: { rows: changes.changed.size + changes.removed.size } });
  });
}

function showCounts(c: Counts): void {
  const parts = [`${c.total} nodes`, `${c.online} ONLINE`, `${c.offline} OFFLINE`, `${c.draining} draining`, `${c.held} held`];
  counts.textContent = (c.shown === c.total ? "" : `showing ${c.shown} of `) + parts.join(" · ");
  empty.hidden = c.shown > 0;
  empty.textContent = c.total === 0 ? "No nodes registered." : "No node matches the filter.";
}

function showConnection(state: ConnectionState): void {
  connection.dataset["state"] = state.kind;
  switch (state.kind) {
    case "connecting":
      connection.textContent = "connecting…";
      break;
    case "live":
      connection.textContent = "live";
      tokenForm.hidden = true;
      break;
    case "reconnecting":
      connection.textContent = `reconnecting (attempt ${state.attempt}, next in ${(state.retryInMs / 1000).toFixed(1)} s): ${state.reason}`;
      break;
    case "refused": {
      const hadToken = readToken() !== undefined;
      connection.textContent = hadToken ? "token refused" : "a reader token is needed";
      tokenReason.textContent =
        (hadToken
          ? state.code === Code.PermissionDenied
            ? "This token may not read the fleet."
            : "The registry refused this token."
          : "This registry asks for a reader token.") + ` The server said: ${state.message}`;
      if (hadToken) forgetToken();
      tokenForm.hidden = false;
      tokenInput.focus();
      break;
    }
  }
}

const watch = new FleetWatch({
  baseUrl: location.origin,
  token: readToken,
  opened: () => fleet.beginSnapshot(),
  snapshotEnded: () => {
    fleet.endSnapshot();
    schedule();
  },
  event: (event) => {
    fleet.apply(event);
    schedule();
  },
  state: showConnection,
});

filterBox.addEventListener("input", () => {
  filter = parseFilter(filterBox.value);
  refilter = true;
  schedule();
});

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (token === "") return;
  saveToken(token);
  tokenInput.value = "";
  tokenForm.hidden = true;
  watch.start();
});

setInterval(() => table.tick(Date.now()), 1000);
showCounts(table.counts(fleet));
watch.start();
