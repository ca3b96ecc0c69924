// `agent-registry deregister`'s own settings, besides the client commands' (client-config.ts): which agent
// to remove and the proof that the caller is that node, given as an id and --secret (REGISTRY_AGENT_SECRET)
// or read from the node daemon's state file (--state-file). Reading that file is the command's job.

import { ConfigError } from "./config-error.js";
import { settingReader } from "./setting-reader.js";
import { flagAndEnv } from "./setting.js";
import { type FlagsOf, SETTINGS } from "./settings.js";

export type DeregisterFlags = FlagsOf<"deregister">;

export type DeregisterTarget =
  /** The id as typed (the server checks it is a UUID), and the secret if one was given. */
  | { readonly kind: "id"; readonly agentId: string; readonly secret: string | undefined }
  /** A daemon's state file: it names the id and holds the secret. */
  | { readonly kind: "stateFile"; readonly path: string };

/** `agentId` is the command's argument, if one was typed. */
export function loadDeregisterTarget(env: NodeJS.ProcessEnv, flags: DeregisterFlags, agentId: string | undefined): DeregisterTarget {
  const read = settingReader(env, flags);
  const stateFile = read.value(SETTINGS.deregisterStateFile);
  const secret = read.value(SETTINGS.agentSecret);
  if (stateFile !== undefined) {
    if (secret !== undefined) {
      throw new ConfigError(
        `${secret.name} and ${stateFile.name} both give the agent's secret: give one (the state file already holds its node's secret)`,
      );
    }
    if (agentId !== undefined) {
      throw new ConfigError(`give the agent id or ${stateFile.name}, not both: the state file names its node's id`);
    }
    return { kind: "stateFile", path: stateFile.value };
  }
  if (agentId === undefined) {
    throw new ConfigError(`deregister needs the agent's id (as \`list\` shows it), or ${flagAndEnv(SETTINGS.deregisterStateFile)} of its node's daemon`);
  }
  return { kind: "id", agentId, secret: secret?.value };
}
