// The page's WatchAgents stream over Connect (HTTP/1.1 server streaming from the browser), kept open: after
// a broken stream (a server restart) it says so and opens a new one with backoff, and the new stream's
// snapshot replaces what the page knew. A refused token (UNAUTHENTICATED, PERMISSION_DENIED) stops it until
// another token is given; retrying the same one would only be refused again.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AgentRegistry, type WatchAgentsResponse } from "../../gen/registry/v1/registry_pb.js";

export type ConnectionState =
  | { readonly kind: "connecting" }
  | { readonly kind: "live" }
  | { readonly kind: "reconnecting"; readonly reason: string; readonly retryInMs: number; readonly attempt: number }
  | { readonly kind: "refused"; readonly code: Code; readonly message: string };

export interface FleetWatchOptions {
  readonly baseUrl: string;
  readonly token: () => string | undefined;
  /** A new stream is open: its snapshot follows. */
  readonly opened: () => void;
  /** The snapshot of the stream is complete (no agent it did not name is still there). */
  readonly snapshotEnded: () => void;
  readonly event: (event: WatchAgentsResponse) => void;
  readonly state: (state: ConnectionState) => void;
}

/** A snapshot is sent at once: this long without a further snapshot event, it is complete... */
const SNAPSHOT_QUIET_MS = 300;
/** ...and this long without its first event (its agents were removed meanwhile), it was empty. */
const SNAPSHOT_FIRST_MS = 3000;
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5000;

export class FleetWatch {
  private controller: AbortController | undefined;

  constructor(private readonly options: FleetWatchOptions) {}

  /** Opens the stream (again, after a refusal or stop). */
  start(): void {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    void this.run(controller.signal);
  }

  stop(): void {
    this.controller?.abort();
    this.controller = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const { options } = this;
    const withToken: Interceptor = (next) => (request) => {
      const token = options.token();
      if (token !== undefined) request.header.set("authorization", `Bearer ${token}`);
      return next(request);
    };
    const client = createClient(AgentRegistry, createConnectTransport({ baseUrl: options.baseUrl, interceptors: [withToken] }));
    let attempt = 0;
    options.state({ kind: "connecting" });
    while (!signal.aborted) {
      let quiet: ReturnType<typeof setTimeout> | undefined;
      let snapshotPending = true;
      const endSnapshot = (): void => {
        if (!snapshotPending) return;
        snapshotPending = false;
        clearTimeout(quiet);
        options.snapshotEnded();
      };
      const endSnapshotAfter = (ms: number): void => {
        clearTimeout(quiet);
        quiet = setTimeout(endSnapshot, ms);
      };
      let reason: string;
      try {
        // A watch sends nothing (not even its headers) until there is an event: on an empty registry it
        // would look like a server that does not answer. One small ListAgents first says that the server
        // answers and takes the token, and whether the snapshot to come is empty.
        const probe = await client.listAgents({ pageSize: 1 }, { signal });
        attempt = 0;
        options.opened();
        options.state({ kind: "live" });
        if (probe.agents.length === 0) endSnapshot();
        else endSnapshotAfter(SNAPSHOT_FIRST_MS);
        for await (const event of client.watchAgents({}, { signal })) {
          // The snapshot's events come at once; the first change after it, or a pause, ends it.
          if (!event.snapshot) endSnapshot();
          else if (snapshotPending) endSnapshotAfter(SNAPSHOT_QUIET_MS);
          options.event(event);
        }
        reason = "the server ended the stream";
      } catch (error) {
        if (signal.aborted) return;
        const connectError = ConnectError.from(error);
        if (connectError.code === Code.Unauthenticated || connectError.code === Code.PermissionDenied) {
          options.state({ kind: "refused", code: connectError.code, message: connectError.rawMessage });
          return;
        }
        reason = connectError.rawMessage;
      } finally {
        clearTimeout(quiet);
      }
      attempt++;
      // Full jitter over a doubling window, so a restarted server is not met by every page at once.
      const window = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1));
      const retryInMs = Math.round(window / 2 + (Math.random() * window) / 2);
      options.state({ kind: "reconnecting", reason, retryInMs, attempt });
      await sleep(retryInMs, signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
