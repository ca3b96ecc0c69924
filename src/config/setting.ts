// One row of the settings table (settings.ts): a setting's variable, flag, default, parser and help. Its
// validation (setting-reader.ts), its command-line flag (cli/setting-options.ts) and its line in the
// README's tables all follow from the row.

/**
 * The commands that take settings; `client` is list, get, watch and deregister, and `deregister` the
 * settings deregister takes besides those.
 */
export type CommandName = "serve" | "agent" | "client" | "deregister" | "migrate";

/** A setting's value as the user gave it, and the name to put in a message about it. */
export interface Given {
  /** The flag if it was given, else the variable; for the default, the variable (or the flag, if it has none). */
  readonly name: string;
  /** Trimmed: whitespace around a value never matters. */
  readonly value: string;
  readonly from: "flag" | "env" | "default";
}

/** A repeatable setting's entries: each time its flag was given, or else its variable's comma-separated entries. */
export interface GivenEntries {
  /** The flag if it was given, else the variable (or the flag, if it has none). */
  readonly name: string;
  readonly entries: readonly GivenEntry[];
}

export interface GivenEntry {
  /** Trimmed. */
  readonly value: string;
  /** Where it was given, for messages: "--token #2", "REGISTRY_TOKENS entry 3". */
  readonly where: string;
}

interface Row<K extends string> {
  /** The flag's key in a command's flags, as commander names it: "agentTimeout" for --agent-timeout. */
  readonly key: K;
  readonly flag: `--${string}`;
  /** The environment variable; a few flags have none (--hostname, --label, --state-file). */
  readonly env?: string;
  readonly commands: readonly CommandName[];
  /** The flag's line in --help; one per command where the commands use the setting differently. */
  readonly help: string | Readonly<Partial<Record<CommandName, string>>>;
  /** The default as --help and the README show it, where that is not the default value itself. */
  readonly shownDefault?: string;
}

/** A flag that takes a value: `--agent-timeout <seconds>`. */
export interface ValueSetting<T, K extends string = string> extends Row<K> {
  readonly kind: "value";
  /** The value as --help shows it: "seconds" in `--agent-timeout <seconds>`. */
  readonly argument: string;
  /**
   * Parsed like a user's value when neither the flag nor the variable is given; a function where it depends on
   * the machine (the home directory, the host name). Without one the setting is optional.
   */
  readonly defaultValue?: string | (() => string);
  readonly parse: (given: Given) => T;
}

/** A flag without a value (`--tls`), on when given; its variable takes true or false. Off by default. */
export interface SwitchSetting<K extends string = string> extends Row<K> {
  readonly kind: "switch";
  readonly parse: (given: Given) => boolean;
}

/** A flag given once per entry (`--label gpu=a100 --label zone=eu`); its variable takes them comma-separated. */
export interface ListSetting<T, K extends string = string> extends Row<K> {
  readonly kind: "list";
  readonly argument: string;
  /** Gets no entries when neither the flag nor the variable is given. */
  readonly parse: (given: GivenEntries) => T;
}

export type Setting = ValueSetting<unknown> | SwitchSetting | ListSetting<unknown>;

export function helpFor(setting: Setting, command: CommandName): string {
  return typeof setting.help === "string" ? setting.help : (setting.help[command] ?? "");
}

/** The default as people read it: "30", "~/.ollama-router", "none", "off". */
export function shownDefault(setting: Setting): string {
  if (setting.shownDefault !== undefined) return setting.shownDefault;
  if (setting.kind === "switch") return "off";
  return setting.kind === "value" && typeof setting.defaultValue === "string" ? setting.defaultValue : "none";
}

/** "--tls-cert (REGISTRY_TLS_CERT)", for messages that say which settings go together. */
export function flagAndEnv(setting: Setting): string {
  return setting.env === undefined ? setting.flag : `${setting.flag} (${setting.env})`;
}
