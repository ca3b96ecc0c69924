// The cap on how many agents the registry holds (REGISTRY_MAX_AGENTS): a Register of an id the table does
// not hold is refused once the table, with the new ids whose Register is still being written, is at the
// cap. Ids the table holds re-register whatever the count, so a full registry still takes its nodes back.

import type { AgentId } from "./agent-id.js";
import { RegistryError } from "./registry-error.js";

export interface FleetCapSettings {
  readonly maxAgents: number;
  /** The setting that raises the cap, for the refusal's message: "REGISTRY_MAX_AGENTS (--max-agents)". */
  readonly setting: string;
}

/** The refusal of a new agent by a full registry (RESOURCE_EXHAUSTED). */
export class FleetFull extends RegistryError {
  constructor(readonly maxAgents: number, setting: string) {
    super(
      "resourceExhausted",
      `the registry is full: it holds ${maxAgents} agents, the most ${setting} allows; deregister nodes that are gone or raise ${setting}`,
    );
  }
}

export class FleetCap {
  /** New ids whose Register is being written: counted, so concurrent Registers cannot overshoot the cap. */
  private readonly joining = new Set<AgentId>();

  constructor(
    private readonly settings: FleetCapSettings | undefined,
    /** Agents the table holds now. */
    private readonly held: () => number,
  ) {}

  /**
   * Holds a place for the new agent `id` until the returned release is called (once its Register is
   * committed or failed); throws FleetFull when there is none.
   */
  reserve(id: AgentId): () => void {
    if (this.settings === undefined) return () => undefined;
    const { maxAgents, setting } = this.settings;
    if (this.held() + this.joining.size >= maxAgents) throw new FleetFull(maxAgents, setting);
    this.joining.add(id);
    return () => this.joining.delete(id);
  }
}
