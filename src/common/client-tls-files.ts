// The TLS files of a client of the registry (the node daemon, the CLI): a CA to trust the server by and a
// certificate and key for mutual TLS, read once at start; a file that cannot be read is an Error naming
// the flag and the path.

import { readFile } from "node:fs/promises";

export interface TlsFilePaths {
  readonly caFile: string | undefined;
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
}

/** Their contents (PEM); what was not given stays undefined (the system's CAs, no client certificate). */
export interface TlsFileContents {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export async function readClientTlsFiles(paths: TlsFilePaths): Promise<TlsFileContents> {
  const read = async (path: string | undefined, flag: string): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (error) {
      throw new Error(`cannot read ${flag} ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const [ca, cert, key] = await Promise.all([read(paths.caFile, "--ca"), read(paths.certFile, "--cert"), read(paths.keyFile, "--key")]);
  return { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
}
