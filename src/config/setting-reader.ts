// The one lookup of a setting: the flag if it was given, else the environment variable, else the default,
// handed to the setting's parser. One whitespace rule for every setting: values are trimmed, and a variable
// that is empty or only whitespace counts as unset (a flag given empty is still given: its parser says what
// it wants instead).

import type { Given, GivenEntries, GivenEntry, ListSetting, SwitchSetting, ValueSetting } from "./setting.js";

export type Env = Readonly<Record<string, string | undefined>>;

/** A flag as commander collects it: a value, a switch, or each value of a repeated flag. */
export type FlagValue = string | boolean | readonly string[];

/** The flags given on the command line, by key; absent means "not given". */
export type Flags = Readonly<Partial<Record<string, FlagValue>>>;

/** A setting's parsed value, and the name and text it came from (for messages about two settings at once). */
export interface Read<T> {
  readonly name: string;
  readonly text: string;
  readonly value: T;
}

export interface SettingReader {
  value<T>(setting: ValueSetting<T> & { readonly defaultValue: string | (() => string) }): Read<T>;
  /** Undefined when neither the flag nor the variable is given and the setting has no default. */
  value<T>(setting: ValueSetting<T>): Read<T> | undefined;
  isOn(setting: SwitchSetting): boolean;
  list<T>(setting: ListSetting<T>): T;
}

export function settingReader(env: Env, flags: Flags): SettingReader {
  const fromEnv = (variable: string | undefined): string | undefined => {
    const value = variable === undefined ? undefined : env[variable]?.trim();
    return value === "" ? undefined : value;
  };

  function value<T>(setting: ValueSetting<T> & { readonly defaultValue: string | (() => string) }): Read<T>;
  function value<T>(setting: ValueSetting<T>): Read<T> | undefined;
  function value<T>(setting: ValueSetting<T>): Read<T> | undefined {
    const flag = flags[setting.key];
    const envValue = fromEnv(setting.env);
    const { defaultValue } = setting;
    const given: Given | undefined =
      typeof flag === "string"
        ? { name: setting.flag, value: flag.trim(), from: "flag" }
        : envValue !== undefined
          ? { name: setting.env ?? setting.flag, value: envValue, from: "env" }
          : defaultValue !== undefined
            ? { name: setting.env ?? setting.flag, value: typeof defaultValue === "string" ? defaultValue : defaultValue(), from: "default" }
            : undefined;
    return given === undefined ? undefined : { name: given.name, text: given.value, value: setting.parse(given) };
  }

  const isOn = (setting: SwitchSetting): boolean => {
    const flag = flags[setting.key];
    const envValue = fromEnv(setting.env);
    const given: Given =
      typeof flag === "boolean"
        ? { name: setting.flag, value: String(flag), from: "flag" }
        : envValue !== undefined
          ? { name: setting.env ?? setting.flag, value: envValue, from: "env" }
          : { name: setting.env ?? setting.flag, value: "false", from: "default" };
    return setting.parse(given);
  };

  const list = <T>(setting: ListSetting<T>): T => {
    const flag = flags[setting.key];
    const envValue = fromEnv(setting.env);
    const given: GivenEntries =
      typeof flag === "object" && flag.length > 0
        ? { name: setting.flag, entries: flag.map((entry, index) => ({ value: entry.trim(), where: `${setting.flag} #${index + 1}` })) }
        : envValue !== undefined && setting.env !== undefined
          ? { name: setting.env, entries: commaSeparatedEntries(envValue, setting.env) }
          : { name: setting.env ?? setting.flag, entries: [] };
    return setting.parse(given);
  };

  return { value, isOn, list };
}

/** "agent:tok1, reader:tok2," as entries; empty ones are skipped, and each keeps its place for messages. */
export function commaSeparatedEntries(text: string, name: string): GivenEntry[] {
  return text
    .split(",")
    .map((entry, index) => ({ value: entry.trim(), where: `${name} entry ${index + 1}` }))
    .filter(({ value }) => value !== "");
}
