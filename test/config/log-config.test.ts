// loadLogConfig and debugRequested (src/config/log-config.ts): how the server and the node daemon log.

import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { debugRequested, loadLogConfig } from "../../src/config/log-config.js";

describe("the log settings", () => {
  it("are info-level JSON lines with nothing set", () => {
    expect(loadLogConfig({})).toEqual({ level: "info", format: "json" });
  });

  it("come from LOG_LEVEL and LOG_FORMAT, and their flags win", () => {
    expect(loadLogConfig({ LOG_LEVEL: "warn", LOG_FORMAT: "pretty" })).toEqual({ level: "warn", format: "pretty" });
    expect(loadLogConfig({ LOG_LEVEL: "warn", LOG_FORMAT: "pretty" }, { logLevel: "debug", logFormat: "json" })).toEqual({ level: "debug", format: "json" });
  });

  it("refuse a level or format pino does not have, naming the setting and what it takes", () => {
    expect(() => loadLogConfig({ LOG_LEVEL: "verbose" })).toThrow(
      new ConfigError('LOG_LEVEL must be fatal, error, warn, info, debug, trace or silent, got "verbose"'),
    );
    expect(() => loadLogConfig({}, { logFormat: "text" })).toThrow(new ConfigError('--log-format must be json or pretty, got "text"'));
  });
});

describe("debug detail on a failure", () => {
  it.each([
    { env: { LOG_LEVEL: "debug" }, wanted: true },
    { env: { LOG_LEVEL: " debug " }, wanted: true },
    { env: { LOG_LEVEL: "info" }, wanted: false },
    { env: { LOG_LEVEL: "verbose" }, wanted: false },
    { env: {}, wanted: false },
  ])("is $wanted for $env, without ever throwing", ({ env, wanted }) => {
    expect(debugRequested(env)).toBe(wanted);
  });
});
