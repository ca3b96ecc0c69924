// Reads the token file (REGISTRY_TOKEN_FILE / --token-file): one `role:token` a line, `#` comments. Read at
// start-up and again on SIGHUP; a file that cannot be read or parsed is a ConfigError naming the file (and
// line), never a token.

import { readFile, stat } from "node:fs/promises";
import { ConfigError, type RoleToken, parseTokenLines } from "../config/index.js";

export interface TokenFile {
  readonly tokens: RoleToken[];
  /** Whether users other than the owner may read it (the server warns: anyone who can read it can act as any role in it). */
  readonly readableByOthers: boolean;
}

export async function readTokenFile(path: string): Promise<TokenFile> {
  let text: string;
  let mode: number;
  try {
    [text, { mode }] = await Promise.all([readFile(path, "utf8"), stat(path)]);
  } catch (error) {
    throw new ConfigError(`cannot read the token file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return { tokens: parseTokenLines(text, path), readableByOthers: (mode & 0o077) !== 0 };
}
