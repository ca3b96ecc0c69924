// Runs the built client commands (`agent-registry list|get|deregister|watch`) as child processes: to the
// end (runCli) or as a long-running watch whose stdout is read line by line (startCli).

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { CLI, type RunResult } from "./server-process.js";

/** A clean environment: nothing inherited (no REGISTRY_URL of the machine running the tests). */
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env["PATH"], HOME: process.env["HOME"], ...env };
}

/** Runs the CLI to its end; never rejects for a non-zero exit, only when it outlives `timeoutMs`. */
export function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { env: cliEnv(env), timeout: timeoutMs, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      if (error !== null && error.killed) {
        reject(new Error(`agent-registry ${args.join(" ")} did not exit within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
      } else if (error !== null && typeof error.code !== "number") {
        reject(error); // could not run at all
      } else {
        resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      }
    });
  });
}

export interface CliProcess {
  readonly child: ChildProcess;
  /** The next stdout line; rejects if none arrives within `timeoutMs` or the process exits first. */
  nextLine(timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code once the process is gone. */
  readonly exited: Promise<number | null>;
  stderr(): string;
}

export function startCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let buffered = "";
  let stderr = "";
  const lines: string[] = [];
  let wake: () => void = () => {};
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
    wake();
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let done = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code) => {
      done = true;
      wake();
      resolve(code);
    }),
  );
  return {
    child,
    exited,
    stderr: () => stderr,
    async nextLine(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.shift();
        if (line !== undefined) return line;
        if (done) throw new Error(`agent-registry ${args.join(" ")} exited (${child.exitCode}) before printing another line; stderr: ${stderr}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`agent-registry ${args.join(" ")} printed no line within ${timeoutMs} ms; stderr: ${stderr}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}
