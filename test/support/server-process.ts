// Runs the built `agent-registry serve` as a child process (for crash, signal and start-up tests), on
// ephemeral loopback ports and the store the tests run on (TEST_STORE), and reads the addresses from its
// start line.

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { testStore } from "./test-server.js";

export const CLI = fileURLToPath(new URL("../../dist/bundle/agent-registry.js", import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function serverEnv(dataDir: string, env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env["PATH"],
    HOME: process.env["HOME"],
    REGISTRY_STORE: testStore(),
    REGISTRY_DATA_DIR: dataDir,
    REGISTRY_GRPC_LISTEN: "127.0.0.1:0",
    REGISTRY_HTTP_LISTEN: "127.0.0.1:0",
    LOG_LEVEL: "warn",
    ...env,
  };
}

/**
 * Starts the server and waits for its start line; `args` are extra `serve` flags, `wrapper` a command that
 * runs node (`taskset -c 0`).
 */
export async function startServerProcess(
  dataDir: string,
  env: Record<string, string> = {},
  args: readonly string[] = [],
  wrapper: readonly string[] = [],
): Promise<ServerProcess> {
  const { match, ...started } = await startCli(["serve", ...args], serverEnv(dataDir, env), /gRPC on (\S+) and HTTP on (\S+?);/, wrapper);
  return { ...started, grpcAddress: match[1] as string, httpUrl: match[2] as string };
}

export interface StartedCli {
  readonly child: ChildProcess;
  /** The start line, matched. */
  readonly match: RegExpExecArray;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** Runs the built CLI with `args` and waits until its stdout matches `startLine` (rejects if it exits first). */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv, startLine: RegExp, wrapper: readonly string[] = []): Promise<StartedCli> {
  const [command, ...commandArgs] = [...wrapper, process.execPath, CLI, ...args] as [string, ...string[]];
  const child = spawn(command, commandArgs, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = startLine.exec(stdout);
      if (match !== null) resolve({ child, match, exited, stderr: () => stderr });
    });
    void exited.then(({ code }) => reject(new Error(`agent-registry ${args[0] ?? ""} exited with ${code} before starting: ${stderr}`)));
  });
}

/** Runs `agent-registry serve` expecting it to stop by itself (bad config, bad file). */
export function runServerToExit(
  dataDir: string,
  env: Record<string, string> = {},
  timeoutMs = 10_000,
  args: readonly string[] = [],
): Promise<RunResult> {
  return runCliToExit(["serve", ...args], serverEnv(dataDir, env), timeoutMs);
}

/** Runs the built CLI with `args` and waits for it to exit by itself (killed, and failing, after `timeoutMs`). */
export function runCliToExit(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`agent-registry ${args[0] ?? ""} did not exit within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
