// The HTTP listener's non-RPC paths: /healthz (the process answers), /readyz (it should get traffic: not
// shutting down, store writable; a hold of the offline guard is said in the body but keeps it ready),
// /metrics (Prometheus text), and the fleet dashboard's files at / (dashboard-files.ts). Everything else is
// a 404 that says where the RPCs are. Open to anyone, so they name no file, host or internal error beyond
// what disclosure.ts allows (the page asks for a token itself when the RPCs need one).

import type { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Log } from "../common/log.js";
import type { DashboardFiles, StaticFile } from "./dashboard-files.js";
import { quote } from "../common/registration-rules.js";
import type { HoldState } from "../registry/offline-guard.js";
import type { ServerMetrics } from "./metrics.js";
import type { Disclosure } from "./disclosure.js";
import type { ServingState } from "./serving-state.js";

/** What connect-node hands its fallback: an HTTP/1.1 or HTTP/2 request and response. */
type Fallback = NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;
type Request = Parameters<Fallback>[0];
type Response = Parameters<Fallback>[1];

export function probeRoutes(
  serving: ServingState,
  metrics: ServerMetrics,
  log: Log,
  offlineHold: () => (HoldState & { readonly held: number }) | undefined,
  disclosure: Disclosure,
  dashboard: DashboardFiles,
): (request: Request, response: Response) => void {
  const send = (response: Response, status: number, body: string, contentType = "text/plain; charset=utf-8"): void => {
    response.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
    response.end(body);
  };
  return (request, response) => {
    const path = (request.url ?? "/").split("?", 1)[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      send(response, 404, `no such path: ${request.method ?? ""} ${quote(path ?? "")}; RPCs are POST /registry.v1.AgentRegistry/<Method>\n`);
      return;
    }
    switch (path) {
      case "/healthz":
        send(response, 200, "ok\n");
        return;
      case "/readyz": {
        // The store's own error (its file path) only where disclosure allows; the log has it always.
        const reason = serving.notReady(disclosure.toAnyone);
        const hold = offlineHold();
        // Still ready: the registry answers; what it holds is said for whoever reads the body.
        const note =
          hold === undefined
            ? ""
            : `offline guard active since ${new Date(hold.since).toISOString()}: ${hold.silent} of ${hold.fleet} nodes stopped ` +
              `beating at once; ${hold.held} held ONLINE (liveness_held) instead of turning OFFLINE\n`;
        if (reason === undefined) send(response, 200, `ok\n${note}`);
        else send(response, 503, `not ready: ${reason}\n${note}`);
        return;
      }
      case "/metrics":
        metrics.text().then(
          ({ contentType, body }) => send(response, 200, body, contentType),
          (error: unknown) => {
            log.error({ err: error }, "cannot render metrics");
            send(response, 500, "cannot render metrics; the server log has the details\n");
          },
        );
        return;
      default: {
        const file = dashboard.lookup(path ?? "");
        if (file !== undefined) {
          serveFile(request, response, file);
        } else if (path === "/" && !dashboard.built) {
          send(response, 404, "the fleet dashboard is not built in this installation (`npm run build` makes dist/web); try /healthz, /readyz, /metrics or POST /registry.v1.AgentRegistry/<Method>\n");
        } else {
          send(response, 404, `no such path: ${quote(path ?? "")}; try /, /healthz, /readyz, /metrics or POST /registry.v1.AgentRegistry/<Method>\n`);
        }
      }
    }
  };
}

/** A file of the page; a 304 when the browser has this version already. */
function serveFile(request: Request, response: Response, file: StaticFile): void {
  if (request.headers["if-none-match"] === file.etag) {
    response.writeHead(304, file.headers);
    response.end();
    return;
  }
  response.writeHead(200, { ...file.headers, "content-length": String(file.body.length) });
  if (request.method === "HEAD") response.end();
  else response.end(file.body);
}
