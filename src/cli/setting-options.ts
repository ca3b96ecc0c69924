// A command's flags, made from the settings table (src/config/settings.ts): each row's flag, value, help,
// default and variable as --help shows them. Commander only collects what was typed: src/config reads the
// environment itself and validates every value, so that its messages name the variable or flag actually set.

import { type Command, Option } from "commander";
import { type CommandName, type FlagValue, type FlagsOf, type Setting, helpFor, settingsOf, shownDefault } from "../config/index.js";

export function addSettingOptions(command: Command, name: CommandName): Command {
  for (const setting of settingsOf(name)) command.addOption(settingOption(setting, name));
  return command;
}

function settingOption(setting: Setting, command: CommandName): Option {
  const option = new Option(setting.kind === "switch" ? setting.flag : `${setting.flag} <${setting.argument}>`, helpFor(setting, command));
  if (setting.kind === "list") option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
  // Shown by --help only: a value commander fills in from a default (or the variable) is never read.
  const shown = shownDefault(setting);
  if (setting.kind === "value" && shown !== "none") option.default(shown, shown);
  if (setting.env !== undefined) option.env(setting.env);
  return option;
}

/** The flags the user typed, by key, for the command's config loader. */
export function givenFlags<C extends CommandName>(command: Command, name: C): FlagsOf<C> {
  const flags: Record<string, FlagValue> = {};
  for (const setting of settingsOf(name)) {
    if (command.getOptionValueSource(setting.key) !== "cli") continue;
    const value = typed(setting, command.getOptionValue(setting.key));
    if (value !== undefined) flags[setting.key] = value;
  }
  // Each key is one of this command's settings, and each value of the kind its row says.
  return flags as FlagsOf<C>;
}

function typed(setting: Setting, value: unknown): FlagValue | undefined {
  switch (setting.kind) {
    case "value":
      return typeof value === "string" ? value : undefined;
    case "switch":
      return typeof value === "boolean" ? value : undefined;
    case "list":
      return Array.isArray(value) ? value.map(String) : undefined;
  }
}
