// Runs the built `agent-registry agent` as a child process (for signal, restart and start-up tests) and reads
// the agent id from its start line.

import { type ChildProcess, spawn } from "node:child_process";
import { CLI, type RunResult, runCliToExit } from "./server-process.js";

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
export function startAgentProcess(args: readonly string[], env: Record<string, string> = {}): Promise<AgentProcess> {
  const child = spawn(process.execPath, [CLI, "agent", ...args], { env: agentEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /^agent-registry agent (\S+) /m.exec(stdout);
      if (match !== null) resolve({ child, agentId: match[1] as string, exited, stderr: () => stderr });
    });
    void exited.then(({ code }) => reject(new Error(`agent exited with ${code} before starting: ${stderr}`)));
  });
}

/** Runs `agent-registry agent` expecting it to stop by itself (bad flags, bad state file). */
export function runAgentToExit(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<AgentRunResult> {
  return runCliToExit(["agent", ...args], agentEnv(env), timeoutMs);
}
