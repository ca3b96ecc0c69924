// The ConfigError a configuration loader throws, for the config tests.

import { expect } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";

export function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError, got none");
}
