// `agent-registry migrate --from json --to sqlite`: flags -> migrateStore, one line saying what was copied.

import { type Command, Option } from "commander";
import { homedir } from "node:os";
import { join } from "node:path";
import { migrateStore } from "../store/migrate.js";

export function addMigrateCommand(program: Command): void {
  program
    .command("migrate")
    .description("copy every agent from one store to the other in the data directory (stop the server first)")
    .addOption(new Option("--from <store>", "the store to copy from").choices(["json", "sqlite"]).makeOptionMandatory())
    .addOption(new Option("--to <store>", "the store to copy to").choices(["json", "sqlite"]).makeOptionMandatory())
    .addOption(new Option("--data-dir <dir>", "the data directory holding both").env("REGISTRY_DATA_DIR"))
    .option("--force", "replace what the target store already holds")
    .action(async (options: { from: "json" | "sqlite"; to: "json" | "sqlite"; dataDir?: string; force?: boolean }) => {
      const dataDir = options.dataDir === undefined || options.dataDir.trim() === "" ? join(homedir(), ".ollama-router") : options.dataDir;
      const result = await migrateStore(dataDir, options.from, options.to, { force: options.force === true });
      process.stdout.write(
        `migrated ${result.agents} agents (revision ${result.revision}) from ${result.from} to ${result.to}; ` +
          `${result.from} is left as it was. Start the server with REGISTRY_STORE=${options.to} (or --store ${options.to}) to use it\n`,
      );
    });
}
