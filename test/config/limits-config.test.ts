// loadLimitsConfig (src/config/limits-config.ts): the server's resource limits and their rows in the table.

import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { DEFAULT_LIMITS, loadLimitsConfig } from "../../src/config/limits-config.js";
import { type ServerFlags, loadServerConfig } from "../../src/config/server-config.js";
import { LIMIT_SETTINGS } from "../../src/config/settings.js";
import { configErrorOf } from "../support/config-errors.js";

/** The ConfigError that loading `env` and `flags` throws. */
const configError = (env: NodeJS.ProcessEnv, flags: ServerFlags = {}): ConfigError => configErrorOf(() => loadLimitsConfig(env, flags));

describe("limits with nothing set", () => {
  it("are the documented defaults, roomy enough for a 10 000-node fleet and the benchmark", () => {
    expect(loadLimitsConfig({})).toEqual({
      maxAgents: 100_000,
      maxMessageBytes: 1_048_576,
      maxStreamsPerConnection: 10_000,
      maxStreams: 20_000,
      maxWatchers: 1000,
      maxRegistrationsPerSecond: 20_000,
      firstBeatTimeoutMs: 10_000,
      watchQueueLimit: 1024,
    });
  });

  it("are what a server config carries by default", () => {
    expect(loadServerConfig({}).limits).toEqual(DEFAULT_LIMITS);
  });
});

describe("limit settings", () => {
  it("each have their own variable and flag", () => {
    expect(new Set(LIMIT_SETTINGS.map((setting) => setting.env)).size).toBe(LIMIT_SETTINGS.length);
    expect(new Set(LIMIT_SETTINGS.map((setting) => setting.flag)).size).toBe(LIMIT_SETTINGS.length);
    expect(LIMIT_SETTINGS.map((setting) => setting.configKey).sort()).toEqual(Object.keys(DEFAULT_LIMITS).sort());
  });

  it("are read from the environment", () => {
    const limits = loadLimitsConfig({
      REGISTRY_MAX_AGENTS: "2000",
      REGISTRY_MAX_MESSAGE_BYTES: "4096",
      REGISTRY_MAX_STREAMS_PER_CONNECTION: "100",
      REGISTRY_MAX_STREAMS: "500",
      REGISTRY_MAX_WATCHERS: "5",
      REGISTRY_MAX_REGISTRATIONS_PER_SECOND: "50",
      REGISTRY_FIRST_BEAT_TIMEOUT: "0.2",
      REGISTRY_WATCH_QUEUE_LIMIT: "64",
    });

    expect(limits).toEqual({
      maxAgents: 2000,
      maxMessageBytes: 4096,
      maxStreamsPerConnection: 100,
      maxStreams: 500,
      maxWatchers: 5,
      maxRegistrationsPerSecond: 50,
      firstBeatTimeoutMs: 200,
      watchQueueLimit: 64,
    });
  });

  it("take flags over the environment", () => {
    const limits = loadLimitsConfig(
      { REGISTRY_MAX_STREAMS: "500", REGISTRY_FIRST_BEAT_TIMEOUT: "oops" },
      { maxStreams: "7", firstBeatTimeout: "3" },
    );

    expect([limits.maxStreams, limits.firstBeatTimeoutMs]).toEqual([7, 3000]);
  });

  it("count an empty variable as unset", () => {
    expect(loadLimitsConfig({ REGISTRY_MAX_WATCHERS: "" }).maxWatchers).toBe(1000);
  });

  it.each(LIMIT_SETTINGS.filter((setting) => setting.unit !== "seconds"))(
    "reject $env=0, a fraction, a word and a negative number, naming $env",
    ({ env, min }) => {
      for (const value of [String(min - 1), "1.5", "many", "-3", "1e3"]) {
        const error = configError({ [env]: value });
        expect(error.message).toMatch(new RegExp(`^${env} must be a (whole )?number`));
        expect(error.message).toContain(`got ${JSON.stringify(value)}`);
      }
    },
  );

  it("name the flag, not the variable, when the flag is wrong", () => {
    expect(configError({ REGISTRY_MAX_STREAMS: "5" }, { maxStreams: "lots" }).message).toMatch(
      /^--max-streams must be a whole number from 1 to 2147483647 \(default 20000\), got "lots"$/,
    );
  });

  it("refuse a message limit below 1024 bytes", () => {
    expect(configError({ REGISTRY_MAX_MESSAGE_BYTES: "100" }).message).toMatch(/^REGISTRY_MAX_MESSAGE_BYTES must be a number of bytes from 1024/);
  });

  it.each(["0", "-1", "ten", "86401"])("refuse REGISTRY_FIRST_BEAT_TIMEOUT=%j in seconds", (value) => {
    expect(configError({ REGISTRY_FIRST_BEAT_TIMEOUT: value }).message).toMatch(/^REGISTRY_FIRST_BEAT_TIMEOUT must be a number of seconds/);
  });

  it("surface through the server config with the same message", () => {
    expect(() => loadServerConfig({ REGISTRY_MAX_WATCHERS: "none" })).toThrow(/^REGISTRY_MAX_WATCHERS must be a whole number/);
  });
});
