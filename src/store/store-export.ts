// What `agent-registry migrate` needs of a store on disk beyond the Store port: every agent as it is kept
// (with the keys of a prototype's file that this server does not know), and a way to replace everything at
// once, revisions included, so a migration loses nothing and renumbers nothing.

import type { Store, StoredAgent } from "../registry/store.js";

export type ExtraKeys = Readonly<Record<string, unknown>>;

export interface ExportedAgent extends StoredAgent {
  /** Keys a store kept without knowing them (from the prototype's agents.json, say). */
  readonly extra: ExtraKeys | undefined;
}

export interface MigratableStore extends Store {
  /** Every agent and the store revision, once loaded. */
  exportAgents(): { readonly agents: readonly ExportedAgent[]; readonly revision: number };
  /** Replaces everything the store holds with `agents`, at `revision`, durably. */
  importAgents(agents: readonly ExportedAgent[], revision: number): Promise<void>;
}
