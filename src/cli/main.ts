#!/usr/bin/env node
// The agent-registry command line: each command lives in its own file; this one only assembles them and
// turns a failure into one clear line and a non-zero exit code.

import { Command } from "commander";
import { ConfigError, debugRequested } from "../config/index.js";
import { addServeCommand } from "./serve-command.js";
import { addAgentCommand } from "./agent-command.js";
import { addInventoryCommand } from "./inventory-command.js";
import { addClientCommands } from "./client-commands.js";
import { addMigrateCommand } from "./migrate-command.js";

const program = new Command()
  .name("agent-registry")
  .description("A control plane that knows which Ollama nodes exist and which of them are alive.")
  .showHelpAfterError();

addServeCommand(program);
addAgentCommand(program);
addInventoryCommand(program);
addClientCommands(program);
addMigrateCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`agent-registry: ${message}\n`);
  if (!(error instanceof ConfigError) && debugRequested(process.env) && error instanceof Error) {
    process.stderr.write(`${error.stack}\n`);
  }
  process.exitCode = 1;
});
