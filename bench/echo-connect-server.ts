// The other floor: a bare @connectrpc/connect-node echo on an h2c (HTTP/2 cleartext) server, serving the
// same AgentRegistry echo as echo-grpc-server.ts to the same grpc-js load (connect-node speaks the gRPC
// protocol too). Node's http2 defaults, as the registry's HTTP listener has them; so the comparison says
// what the Heartbeat hot path would cost on the Connect listener.
// Usage: node echo-connect-server.js [port]; prints "echo-connect listening on 127.0.0.1:port".

import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AgentRegistry, type HeartbeatRequest, type HeartbeatResponse } from "../gen/registry/v1/registry_pb.js";
import { beatReply, registerReply } from "./echo-replies.js";
import { reportLoopDelayOnSignal } from "./loop-delay-signal.js";

reportLoopDelayOnSignal();

const port = Number(process.argv[2] ?? "0");
const handler = connectNodeAdapter({
  routes: (router) =>
    router.service(AgentRegistry, {
      register: (request) => registerReply(request),
      async *heartbeat(requests: AsyncIterable<HeartbeatRequest>): AsyncIterable<HeartbeatResponse> {
        for await (const request of requests) yield beatReply(request);
      },
    }),
});
const server = http2.createServer(handler);
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`echo-connect listening on 127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
const stop = (): void => {
  server.close();
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
