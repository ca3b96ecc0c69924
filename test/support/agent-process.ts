// Runs the built `agent-registry agent` as a child process (for signal, restart and start-up tests) and reads
// the agent id from its start line.

import type { ChildProcess } from "node:child_process";
import { type RunResult, runCliToExit, startCli } from "./server-process.js";

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly agentId: string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

export type AgentRunResult = RunResult;

function agentEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env["PATH"], HOME: process.env["HOME"], LOG_LEVEL: "info", ...env };
}

/** Starts the daemon and waits for its start line. */
export async function startAgentProcess(args: readonly string[], env: Record<string, string> = {}): Promise<AgentProcess> {
  const { match, ...started } = await startCli(["agent", ...args], agentEnv(env), /^agent-registry agent (\S+) /m);
  return { ...started, agentId: match[1] as string };
}

/** Runs `agent-registry agent` expecting it to stop by itself (bad flags, bad state file). */
export function runAgentToExit(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<AgentRunResult> {
  return runCliToExit(["agent", ...args], agentEnv(env), timeoutMs);
}
