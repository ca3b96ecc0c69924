// The node daemon's own identity on disk: `agent-state.json` holding the agent id it generated on first start
// and the secret the registry gave that id at its first Register, so a restarted daemon comes back as the
// same node and can prove it. Written atomically with mode 0600 (the secret is what makes the id this node's). A file that cannot be read or parsed stops the daemon and is never overwritten:
// replacing it would silently turn the node into a new one.

import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { v4 } from "uuid";
import { isAgentId } from "../common/registration-rules.js";
import { writeFileAtomic } from "../common/atomic-write.js";

export interface AgentState {
  /** The node's UUID, lower case. */
  readonly agentId: string;
  /** The secret the registry returned at the id's first Register; undefined until then. */
  readonly agentSecret?: string | undefined;
}

export class AgentStateError extends Error {
  override name = "AgentStateError";
}

/** The state in `path`, or undefined if there is no such file. */
export async function loadAgentState(path: string): Promise<AgentState | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (isErrno(error) && error.code === "ENOENT") return undefined;
    throw new AgentStateError(`cannot read the agent state file ${path}: ${describe(error)}`, { cause: error });
  }
  return parseAgentState(path, text);
}

/** Writes `state` atomically with mode 0600, creating the directory (mode 0700) if needed. */
export async function saveAgentState(path: string, state: AgentState): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const json = state.agentSecret === undefined ? { agent_id: state.agentId } : { agent_id: state.agentId, agent_secret: state.agentSecret };
    await writeFileAtomic(path, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600 });
  } catch (error) {
    throw new AgentStateError(`cannot write the agent state file ${path}: ${describe(error)}`, { cause: error });
  }
}

/** Loads the state, or on first start makes a new UUID v4 and saves it before anything registers with it. */
export async function loadOrCreateAgentState(
  path: string,
  newId: () => string = v4,
): Promise<{ state: AgentState; created: boolean }> {
  const existing = await loadAgentState(path);
  if (existing !== undefined) return { state: existing, created: false };
  const state = { agentId: newId().toLowerCase() };
  await saveAgentState(path, state);
  return { state, created: true };
}

function parseAgentState(path: string, text: string): AgentState {
  const fix = "fix it, or remove it to register as a new node";
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AgentStateError(`the agent state file ${path} is not valid JSON (${describe(error)}); ${fix}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new AgentStateError(`the agent state file ${path} must hold a JSON object like {"agent_id": "<uuid>"}; ${fix}`);
  }
  // Keys other than agent_id and agent_secret are allowed (and ignored), so a newer daemon's file still loads.
  const id: unknown = (json as Record<string, unknown>)["agent_id"];
  const secret: unknown = (json as Record<string, unknown>)["agent_secret"];
  if (typeof id !== "string" || !isAgentId(id)) {
    throw new AgentStateError(
      `the agent state file ${path} has no valid "agent_id" (a UUID), got ${JSON.stringify(id) ?? "nothing"}; ${fix}`,
    );
  }
  if (secret !== undefined && (typeof secret !== "string" || secret === "")) {
    throw new AgentStateError(`the agent state file ${path} has an "agent_secret" that is not a non-empty string; ${fix}`);
  }
  return secret === undefined ? { agentId: id.toLowerCase() } : { agentId: id.toLowerCase(), agentSecret: secret };
}

function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && "code" in error;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
