// Vitest global setup: builds dist/ (the server and the dashboard page) once per run, so tests that start the real `agent-registry` binary
// as a child process run what the source says now.

import { execFileSync } from "node:child_process";

export default function setup(): void {
  // Each test project runs the global setup; one build per run is enough.
  if (process.env["AGENT_REGISTRY_DIST_BUILT"] === "1") return;
  execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
  process.env["AGENT_REGISTRY_DIST_BUILT"] = "1";
}
