// A running test server whose store can be made to refuse writes, on either store: agents.json replaced by a
// directory (every atomic rename over it fails; no root needed), or registry.db's file system filled up (a
// tmpfs, so root; SQLite keeps its files open, so replacing them would go unnoticed).

import { mkdir, rm, rmdir } from "node:fs/promises";
import { type TestServer, startTestServer, testStore } from "./test-server.js";
import { Tmpfs, canMount } from "./tmpfs.js";

/** Whether this machine can break the store the tests run on. */
export const canBreakStore: boolean = testStore() === "json" || canMount;

export interface BreakableServer {
  readonly server: TestServer;
  /** Makes every write fail; resolves with what the refusal says and how to undo it. */
  breakWrites(): Promise<{ readonly problem: RegExp; fix(): Promise<void> }>;
  dispose(): Promise<void>;
}

export async function startBreakableServer(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<BreakableServer> {
  if (testStore() === "json") {
    const server = await startTestServer(overrides);
    return {
      server,
      async breakWrites() {
        await rm(server.dataFile);
        await mkdir(server.dataFile);
        return { problem: /EISDIR|is a directory|EEXIST|not a directory/i, fix: () => rmdir(server.dataFile) };
      },
      dispose: () => server.dispose(),
    };
  }
  const mount = await Tmpfs.mount(2048);
  const server = await startTestServer({ ...overrides, dataDir: mount.dir });
  return {
    server,
    breakWrites() {
      const filler = mount.fill();
      return Promise.resolve({ problem: /disk is full|no space left/i, fix: () => rm(filler) });
    },
    async dispose() {
      await server.close();
      await mount.unmount();
    },
  };
}

export { canMount };
