// The etcd client on a member that is connected but answers nothing (a black hole between them): the call
// fails after its deadline naming etcd, and the next call goes to the next member and is answered.

import { afterEach, describe, expect, it } from "vitest";
import { EtcdClient, EtcdUnreachable } from "../../src/store/etcd-client.js";
import { type BlackholeProxy, startBlackholeProxy } from "../support/blackhole-proxy.js";
import { type EtcdCluster, etcdMissing, startEtcd } from "../support/etcd.js";

const missing = etcdMissing();
if (missing !== undefined) console.warn(`skipping the etcd client test: ${missing}`);

let etcd: EtcdCluster | undefined;
let proxy: BlackholeProxy | undefined;
let client: EtcdClient | undefined;
afterEach(async () => {
  client?.close();
  await proxy?.close();
  await etcd?.stop();
});

describe.skipIf(missing !== undefined)("the etcd client", () => {
  it("moves unary calls to the next member when one is connected but answers nothing", async () => {
    etcd = await startEtcd(1);
    const direct = new URL(etcd.endpoints);
    proxy = await startBlackholeProxy({ host: direct.hostname, port: Number(direct.port) });
    client = new EtcdClient([`http://${proxy.address}`, etcd.endpoints]);
    await client.range({ key: new TextEncoder().encode("/x") });

    proxy.blackhole();
    const failed = await client.range({ key: new TextEncoder().encode("/x") }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(EtcdUnreachable);
    expect((failed as EtcdUnreachable).message).toMatch(/^etcd at .* did not answer: Range: DEADLINE_EXCEEDED/);

    const started = performance.now();
    await client.range({ key: new TextEncoder().encode("/x") });
    // Answered by the other member, not after another deadline on the black hole.
    expect(performance.now() - started).toBeLessThan(2000);
  }, 20_000);
});
