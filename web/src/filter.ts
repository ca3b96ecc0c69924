// The filter box: every word typed must match the node's hostname, address, one of its labels (as
// key=value) or one of its models, ignoring case. An empty box matches every node.

import type { Agent } from "../../gen/registry/v1/registry_pb.js";
import { addressText, labelPairs } from "./format.js";

export type AgentFilter = (agent: Agent) => boolean;

export const everyAgent: AgentFilter = () => true;

export function parseFilter(text: string): AgentFilter {
  const words = text.toLowerCase().split(/\s+/).filter((word) => word !== "");
  if (words.length === 0) return everyAgent;
  return (agent) => {
    const haystack = searchable(agent);
    return words.every((word) => haystack.some((field) => field.includes(word)));
  };
}

function searchable(agent: Agent): string[] {
  return [agent.hostname, addressText(agent), ...labelPairs(agent), ...modelNames(agent)].map((field) => field.toLowerCase());
}

/** Installed and loaded models alike. */
function modelNames(agent: Agent): string[] {
  return agent.models.map((model) => model.name);
}
