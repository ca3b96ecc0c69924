// The one error type of configuration: its message names the variable or flag and what it accepts.

export class ConfigError extends Error {
  override name = "ConfigError";
}
