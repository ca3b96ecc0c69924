// A TCP proxy on loopback that can turn into a black hole: it stops forwarding both ways without closing
// either side, as a peer that vanished (power cut, cable pulled) looks to the server: a half-open
// connection. Used to check that keepalive pings notice it.

import * as net from "node:net";

export interface BlackholeProxy {
  /** host:port to connect to instead of the target. */
  readonly address: string;
  /** From now on nothing passes, and nothing is closed. */
  blackhole(): void;
  close(): Promise<void>;
}

export async function startBlackholeProxy(target: { host: string; port: number }): Promise<BlackholeProxy> {
  let dropping = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => socket.destroy()); // the other side is torn down by its own close
    }
    client.on("data", (chunk) => dropping || upstream.write(chunk));
    upstream.on("data", (chunk) => dropping || client.write(chunk));
    client.on("close", () => dropping || upstream.destroy());
    upstream.on("close", () => dropping || client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    blackhole: () => {
      dropping = true;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
