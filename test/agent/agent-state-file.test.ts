import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { validate, version } from "uuid";
import {
  AgentStateError,
  loadAgentState,
  loadOrCreateAgentState,
  saveAgentState,
} from "../../src/agent/agent-state-file.js";
import { TempDirs } from "../store/agent-records.js";

const dirs = new TempDirs();
const ID = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";

afterEach(async () => {
  await dirs.removeAll();
});

async function stateError(path: string): Promise<AgentStateError> {
  const error: unknown = await loadOrCreateAgentState(path).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof AgentStateError)) throw new Error(`expected an AgentStateError, got ${String(error)}`);
  return error;
}

describe("the agent state file", () => {
  it("gets a new UUID v4 on first start, saved before it is used", async () => {
    const file = join(await dirs.make(), "agent-state.json");

    const { state, created } = await loadOrCreateAgentState(file);

    expect(created).toBe(true);
    expect(validate(state.agentId) && version(state.agentId)).toBe(4);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ agent_id: state.agentId });
  });

  it("gives the same id back after a restart", async () => {
    const file = join(await dirs.make(), "agent-state.json");
    const first = await loadOrCreateAgentState(file);

    const second = await loadOrCreateAgentState(file, () => "never-used");

    expect(second).toEqual({ state: first.state, created: false });
  });

  it("keeps the agent's secret beside its id", async () => {
    const file = join(await dirs.make(), "agent-state.json");

    await saveAgentState(file, { agentId: ID, agentSecret: "s3cret" });

    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ agent_id: ID, agent_secret: "s3cret" });
    expect(await loadAgentState(file)).toEqual({ agentId: ID, agentSecret: "s3cret" });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("refuses an agent_secret that is not a non-empty string, naming the file", async () => {
    const file = join(await dirs.make(), "agent-state.json");
    await writeFile(file, JSON.stringify({ agent_id: ID, agent_secret: 42 }));

    expect((await stateError(file)).message).toContain(`the agent state file ${file} has an "agent_secret" that is not a non-empty string`);
  });

  it("is readable by its owner only (mode 0600)", async () => {
    const file = join(await dirs.make(), "agent-state.json");

    await saveAgentState(file, { agentId: ID });

    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("creates a missing data directory with mode 0700", async () => {
    const dir = join(await dirs.make(), "nested", "data");

    await saveAgentState(join(dir, "agent-state.json"), { agentId: ID });

    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it("is replaced atomically, leaving no temp file behind", async () => {
    const dir = await dirs.make();
    const file = join(dir, "agent-state.json");
    await saveAgentState(file, { agentId: ID });

    await saveAgentState(file, { agentId: "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48" });

    expect(await readdir(dir)).toEqual(["agent-state.json"]);
    expect(await loadAgentState(file)).toEqual({ agentId: "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48" });
  });

  it("reads an id in upper case as lower case and ignores keys it does not know", async () => {
    const file = join(await dirs.make(), "agent-state.json");
    await writeFile(file, JSON.stringify({ agent_id: ID.toUpperCase(), secret: "later" }));

    expect(await loadAgentState(file)).toEqual({ agentId: ID });
  });

  it.each([
    { what: "truncated JSON", text: '{"agent_id": "3f2b8c1e', problem: "is not valid JSON" },
    { what: "an array", text: `["${ID}"]`, problem: "must hold a JSON object" },
    { what: "no agent_id", text: "{}", problem: 'has no valid "agent_id"' },
    { what: "an agent_id that is not a UUID", text: '{"agent_id": "gpu-01"}', problem: 'has no valid "agent_id" (a UUID), got "gpu-01"' },
  ])("refuses $what with an error naming the file, and never overwrites it", async ({ text, problem }) => {
    const file = join(await dirs.make(), "agent-state.json");
    await writeFile(file, text);
    const before = await stat(file);

    const error = await stateError(file);

    expect(error.message).toContain(file);
    expect(error.message).toContain(problem);
    expect(error.message).toContain("remove it to register as a new node");
    expect(await readFile(file, "utf8")).toBe(text);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
  });

  it("names the file when it cannot be read at all", async () => {
    const file = join(await dirs.make(), "agent-state.json");
    await mkdir(file);

    const error = await stateError(file);

    expect(error.message).toMatch(new RegExp(`cannot read the agent state file ${file}: .*EISDIR`));
  });
});
