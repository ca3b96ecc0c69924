// The commands' flags (src/cli/setting-options.ts) come from the settings table: --help shows every row's
// flag, variable and default, and only what was typed reaches the config loaders.

import { readFile, readdir } from "node:fs/promises";
import { Command, Option } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { addSettingOptions, givenFlags } from "../../src/cli/setting-options.js";
import { type CommandName, type Setting, shownDefault } from "../../src/config/setting.js";
import { SETTINGS, settingsOf } from "../../src/config/settings.js";

const COMMANDS: CommandName[] = ["serve", "agent", "client", "deregister", "migrate"];

/** A command with the flags of `name`, after parsing `argv`. */
function parsed(name: CommandName, argv: string[]): Command {
  return addSettingOptions(new Command(name).exitOverride(), name).parse(argv, { from: "user" });
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("the commands' flags", () => {
  it("have the keys the config loaders read them by: commander's names for them", () => {
    for (const setting of Object.values(SETTINGS)) expect(new Option(setting.flag).attributeName()).toBe(setting.key);
  });

  it.each(COMMANDS)("of %s show each setting's flag, variable and default in --help", (name) => {
    const help = addSettingOptions(new Command(name), name).helpInformation().replace(/\s+/g, " ");

    for (const setting of settingsOf(name)) {
      expect(help).toContain(setting.kind === "switch" ? `${setting.flag} ` : `${setting.flag} <${setting.argument}>`);
      if (setting.env !== undefined) expect(help).toContain(`env: ${setting.env})`);
      if (setting.kind === "value" && shownDefault(setting) !== "none") expect(help).toContain(`(default: ${shownDefault(setting)}`);
    }
  });

  it("come back as typed, by key: a value as text, a switch as true, a repeated flag as each value", () => {
    const serve = parsed("serve", ["--heartbeat-interval", " 5", "--token", "agent:one", "--insecure-allow-unauthenticated", "--token", "reader:two"]);

    expect(givenFlags(serve, "serve")).toEqual({
      heartbeatInterval: " 5",
      token: ["agent:one", "reader:two"],
      insecureAllowUnauthenticated: true,
    });
  });

  it("leave out what commander filled in from a default or a variable, so config names the variable", () => {
    vi.stubEnv("REGISTRY_ADDR", "10.0.0.1:50051");
    vi.stubEnv("REGISTRY_TLS", "true");
    vi.stubEnv("OLLAMA_URL", "");

    expect(givenFlags(parsed("agent", ["--label", "gpu=a100"]), "agent")).toEqual({ label: ["gpu=a100"] });
    expect(givenFlags(parsed("client", []), "client")).toEqual({});
  });
});

describe("the command files", () => {
  it("name no variable: each comes from the settings table", async () => {
    const dir = new URL("../../src/cli/", import.meta.url);
    const rows: readonly Setting[] = Object.values(SETTINGS);
    const variables = rows.flatMap((setting) => (setting.env === undefined ? [] : [setting.env]));
    for (const file of (await readdir(dir)).filter((name) => name.endsWith(".ts"))) {
      const text = await readFile(new URL(file, dir), "utf8");
      for (const variable of variables) expect({ file, named: new RegExp(`\\b${variable}\\b`).test(text) }).toEqual({ file, named: false });
    }
  });
});
