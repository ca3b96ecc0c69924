// `agent-registry migrate`'s configuration: the data directory and the two stores, which must differ.

import { ConfigError } from "./config-error.js";
import type { StoreKind } from "./server-config.js";
import { settingReader } from "./setting-reader.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

export interface MigrateConfig {
  readonly dataDir: string;
  readonly from: StoreKind;
  readonly to: StoreKind;
  /** Replace what the target store holds. */
  readonly force: boolean;
}

export function loadMigrateConfig(env: NodeJS.ProcessEnv, flags: FlagsOf<"migrate"> = {}): MigrateConfig {
  const read = settingReader(env, flags);
  const from = read.value(SETTINGS.migrateFrom)?.value;
  const to = read.value(SETTINGS.migrateTo)?.value;
  if (from === undefined || to === undefined) {
    throw new ConfigError(`${from === undefined ? "--from" : "--to"} is required: say which store to copy from and to, e.g. --from json --to sqlite`);
  }
  if (from === to) throw new ConfigError(`--from and --to are both ${from}: give two different stores (json, sqlite)`);
  return { dataDir: read.value(SETTINGS.dataDir).value, from, to, force: read.isOn(SETTINGS.force) };
}
