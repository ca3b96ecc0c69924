// `agent-registry deregister` as a node's owner runs it against a registry with authentication on: an agent
// token removes the node's own id with the node's secret (--secret, REGISTRY_AGENT_SECRET, or the daemon's
// state file via --state-file), and nothing else; the built CLI as a child process, checked by what it prints.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { saveAgentState } from "../../src/agent/agent-state-file.js";
import { NO_SECURITY, parseTokenList } from "../../src/config/index.js";
import { runCli } from "../support/cli-process.js";
import { type RegistryClient, connectClient } from "../support/clients.js";
import type { RunResult } from "../support/server-process.js";
import { type TestServer, startTestServer } from "../support/test-server.js";

const AGENT_TOKEN = "agent-token-0000000000000001";
const ADMIN_TOKEN = "admin-token-0000000000000001";

let server: TestServer;
let agent: RegistryClient;
let admin: RegistryClient;
let stateDir: string;
let next = 0;

beforeAll(async () => {
  server = await startTestServer({
    security: { ...NO_SECURITY, tokens: parseTokenList(`agent:${AGENT_TOKEN},admin:${ADMIN_TOKEN}`, "REGISTRY_TOKENS") },
  });
  agent = connectClient(server.httpUrl, { token: AGENT_TOKEN });
  admin = connectClient(server.httpUrl, { token: ADMIN_TOKEN });
  stateDir = await mkdtemp(join(tmpdir(), "agent-registry-state-"));
});

afterAll(async () => {
  agent.close();
  admin.close();
  await server.dispose();
  await rm(stateDir, { recursive: true, force: true });
});

/** Registers a new node with the agent token, as its daemon does: its id and the secret it was given. */
async function registerNode(): Promise<{ id: string; secret: string }> {
  next++;
  const id = `3f2b8c1e-6d4a-4f7e-9b1c-${String(next).padStart(12, "0")}`;
  const { agentSecret } = await agent.register({ agentId: id, hostname: `gpu-${next}`, ipAddress: "10.0.0.1" });
  return { id, secret: agentSecret };
}

/** `deregister` with the agent token (in the variable, as the README advises) against the test server. */
const deregister = (args: string[], env: Record<string, string> = {}): Promise<RunResult> =>
  runCli(["deregister", ...args, "--url", server.httpUrl], { REGISTRY_TOKEN: AGENT_TOKEN, ...env });

async function exists(id: string): Promise<boolean> {
  return admin.getAgent(id).then(
    () => true,
    (error: unknown) => {
      if ((error as { code?: unknown }).code === Code.NotFound) return false;
      throw error;
    },
  );
}

function oneLineFailure(result: RunResult): string {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0] ?? "";
}

describe("deregister with an agent token", () => {
  it("removes the node's own id given its secret with --secret", async () => {
    const node = await registerNode();

    expect(await deregister([node.id, "--secret", node.secret])).toEqual({ code: 0, stdout: `deregistered ${node.id}\n`, stderr: "" });
    expect(await exists(node.id)).toBe(false);
  });

  it("takes the secret from REGISTRY_AGENT_SECRET", async () => {
    const node = await registerNode();

    expect((await deregister([node.id], { REGISTRY_AGENT_SECRET: node.secret })).code).toBe(0);
    expect(await exists(node.id)).toBe(false);
  });

  it("reads the id and the secret from the daemon's state file with --state-file", async () => {
    const node = await registerNode();
    const stateFile = join(stateDir, `agent-state-${node.id}.json`);
    await saveAgentState(stateFile, { agentId: node.id, agentSecret: node.secret });

    expect(await deregister(["--state-file", stateFile])).toEqual({ code: 0, stdout: `deregistered ${node.id}\n`, stderr: "" });
    expect(await exists(node.id)).toBe(false);
  });

  it("is refused in one line for another node's secret, and the node stays", async () => {
    const node = await registerNode();
    const other = await registerNode();

    const line = oneLineFailure(await deregister([node.id, "--secret", other.secret]));

    expect(line).toMatch(new RegExp(`^agent-registry: the registry at .* does not allow Deregister: agent ${node.id} is held by another node's secret`));
    expect(await exists(node.id)).toBe(true);
  });

  it("is refused in one line without a secret, and the node stays", async () => {
    const node = await registerNode();

    expect(oneLineFailure(await deregister([node.id]))).toContain("none was sent");
    expect(await exists(node.id)).toBe(true);
  });
});

describe("deregister's own settings", () => {
  it("fail in one line naming --state-file when neither an id nor a state file is given", async () => {
    expect(oneLineFailure(await deregister([]))).toBe(
      "agent-registry: deregister needs the agent's id (as `list` shows it), or --state-file of its node's daemon",
    );
  });

  it("fail in one line naming the path when the state file does not exist", async () => {
    const missing = join(stateDir, "nowhere.json");

    expect(oneLineFailure(await deregister(["--state-file", missing]))).toBe(
      `agent-registry: there is no agent state file at ${missing}; give the path of the node daemon's agent-state.json, or the agent id`,
    );
  });

  it("fail in one line naming the state file when it is not a daemon's", async () => {
    const node = await registerNode();
    const broken = join(stateDir, "broken.json");
    await saveAgentState(broken, { agentId: node.id });
    await writeFile(broken, "{ not json");

    expect(oneLineFailure(await deregister(["--state-file", broken]))).toMatch(
      new RegExp(`^agent-registry: the agent state file ${broken} is not valid JSON`),
    );
    expect(await exists(node.id)).toBe(true);
  });

  it("refuse both a state file and a secret, or an id, in one line", async () => {
    const stateFile = join(stateDir, "unused.json");

    expect(oneLineFailure(await deregister(["--state-file", stateFile, "--secret", "abc"]))).toMatch(/--secret and --state-file both give/);
    expect(oneLineFailure(await deregister(["--state-file", stateFile], { REGISTRY_AGENT_SECRET: "abc" }))).toMatch(
      /REGISTRY_AGENT_SECRET and --state-file both give/,
    );
    expect(oneLineFailure(await deregister([`3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30`, "--state-file", stateFile]))).toMatch(
      /give the agent id or --state-file, not both/,
    );
  });

  it("refuse a secret that is not one in one line naming --secret", async () => {
    expect(oneLineFailure(await deregister(["3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30", "--secret", "not a secret"]))).toMatch(
      /^agent-registry: --secret must be the agent_secret the node's first Register returned/,
    );
  });
});
