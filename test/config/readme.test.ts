// README.md's configuration tables against the settings table (src/config/settings.ts): each setting of a
// command has a row in that command's section with its variable, flag and default, and each row there is a
// setting of the command, so the README and the table cannot drift apart. (The meaning column is prose.)

import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { type CommandName, shownDefault } from "../../src/config/setting.js";
import { settingsOf } from "../../src/config/settings.js";

/** The README sections (`## ...`) whose tables document each command's settings. */
const SECTIONS: { readonly [C in CommandName]: readonly string[] } = {
  serve: ["Configuration", "Limits"],
  agent: ["Running a node daemon"],
  client: ["Using the CLI"],
  deregister: ["Using the CLI"],
  migrate: ["Changing the store"],
};

interface TableRow {
  /** The variables and flags the row names in its first two cells. */
  readonly envs: readonly string[];
  readonly flags: readonly string[];
  /** The default cell without backticks: "30", "~/.ollama-router", "1048576 (1 MiB)", "none". */
  readonly defaultText: string;
  readonly line: string;
}

const README = await readFile(new URL("../../README.md", import.meta.url), "utf8");

/** The rows of every table in the section under `## heading` whose header starts `| env | flag | default |`. */
function settingRows(heading: string): TableRow[] {
  const start = README.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no section "## ${heading}"`);
  const end = README.indexOf("\n## ", start + 1);
  const rows: TableRow[] = [];
  let inTable = false;
  for (const line of README.slice(start, end < 0 ? undefined : end).split("\n")) {
    if (!line.startsWith("|")) inTable = false;
    else if (/^\| env \| flag \| default \|/.test(line)) inTable = true;
    else if (inTable && !line.startsWith("|---")) {
      const [env = "", flag = "", defaultCell = ""] = line.split("|").slice(1).map((cell) => cell.trim());
      const envs = [...env.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((match) => match[1] ?? "");
      const flags = [...flag.matchAll(/`(--[a-z][a-z-]*)/g)].map((match) => match[1] ?? "");
      if (envs.length > 0 || flags.length > 0) rows.push({ envs, flags, defaultText: defaultCell.replaceAll("`", ""), line });
    }
  }
  return rows;
}

describe.each(Object.keys(SECTIONS) as CommandName[])("README.md's tables for %s", (command) => {
  const rows = SECTIONS[command].flatMap(settingRows);
  const settings = settingsOf(command);

  it.each(settings.map((setting) => ({ setting, flag: setting.flag, env: setting.env ?? "(no variable)" })))(
    "document $flag, $env with its default",
    ({ setting }) => {
      const row = rows.find((candidate) => candidate.flags.includes(setting.flag));
      const shown = shownDefault(setting);

      expect(row, `no row for ${setting.flag} in ${SECTIONS[command].join(", ")}`).not.toBeUndefined();
      expect({ envs: row?.envs, flags: row?.flags }).toEqual({ envs: setting.env === undefined ? [] : [setting.env], flags: [setting.flag] });
      expect(row?.defaultText === shown || row?.defaultText.startsWith(`${shown} (`), `default ${JSON.stringify(shown)} in: ${row?.line}`).toBe(true);
    },
  );

  it("document nothing that is not one of its settings (or of a command documented in the same section)", () => {
    const neighbours = (Object.keys(SECTIONS) as CommandName[]).filter((other) =>
      SECTIONS[other].some((section) => SECTIONS[command].includes(section)),
    );
    const known = new Set(neighbours.flatMap(settingsOf).map((setting) => `${setting.env ?? ""} ${setting.flag}`));

    expect(rows.map((row) => `${row.envs.join(",")} ${row.flags.join(",")}`).filter((key) => !known.has(key))).toEqual([]);
  });
});
