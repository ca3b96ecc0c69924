// `agent-registry migrate --from json --to sqlite`: flags -> MigrateConfig -> migrateStore, one line saying
// what was copied where.

import type { Command } from "commander";
import { SETTINGS, loadMigrateConfig } from "../config/index.js";
import { agentsCount, migrateStore } from "../store/migrate.js";
import { addSettingOptions, givenFlags } from "./setting-options.js";

export function addMigrateCommand(program: Command): void {
  const migrate = program
    .command("migrate")
    .description("copy every agent from one store to the other in the data directory (stop its server first)");
  addSettingOptions(migrate, "migrate").action(async (_options: unknown, command: Command) => {
    const config = loadMigrateConfig(process.env, givenFlags(command, "migrate"));
    const result = await migrateStore(config.dataDir, config.from, config.to, { force: config.force });
    process.stdout.write(
      `migrated ${agentsCount(result.agents)} (revision ${result.revision}) from ${result.from} to ${result.to}; ` +
        `${result.from} is left as it was. Start the server with ${SETTINGS.store.env}=${config.to} (or ${SETTINGS.store.flag} ${config.to}) to use it\n`,
    );
  });
}
