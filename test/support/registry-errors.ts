// The RegistryError a synchronous domain call threw, for unit tests of the domain.

import { RegistryError } from "../../src/registry/registry-error.js";

export function thrownBy(fn: () => unknown): RegistryError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error("expected a RegistryError, got none");
}
