// The library surface, used the way an internal service would.

import { afterEach, expect, it } from "vitest";
import { AgentStatus, createRegistryClient } from "../src/index.js";
import { type TestServer, startTestServer } from "./support/test-server.js";

let server: TestServer | undefined;

afterEach(async () => {
  await server?.dispose();
});

it("gives a program a Connect client for the HTTP listener", async () => {
  server = await startTestServer();
  const client = createRegistryClient(server.httpUrl);
  const { agent } = await client.register({ hostname: "gpu-01", ipAddress: "10.0.0.7", labels: { gpu: "a100" } });
  const { agents } = await client.listAgents({ labelSelector: "gpu=a100", status: AgentStatus.ONLINE });
  expect(agents.map((listed) => listed.id)).toEqual([agent?.id]);
});
