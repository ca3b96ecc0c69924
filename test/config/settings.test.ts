// The settings table (src/config/settings.ts): one row per setting, and within each command one flag, one
// key and one variable per row.

import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/config/limits-config.js";
import { type CommandName, flagAndEnv, helpFor, shownDefault } from "../../src/config/setting.js";
import { DEFAULTS, LIMIT_SETTINGS, SETTINGS, settingsOf } from "../../src/config/settings.js";

const COMMANDS: CommandName[] = ["serve", "agent", "client", "deregister", "migrate"];

describe("the settings table", () => {
  it.each(COMMANDS)("gives each of %s's settings its own flag, key and variable", (command) => {
    const settings = settingsOf(command);
    const envs = settings.flatMap((setting) => (setting.env === undefined ? [] : [setting.env]));

    expect(new Set(settings.map((setting) => setting.flag)).size).toBe(settings.length);
    expect(new Set(settings.map((setting) => setting.key)).size).toBe(settings.length);
    expect(new Set(envs).size).toBe(envs.length);
  });

  it("gives every setting a help line in each command that takes it", () => {
    for (const setting of Object.values(SETTINGS)) {
      for (const command of setting.commands) expect(helpFor(setting, command)).not.toBe("");
    }
  });

  it("lists the flags of each command", () => {
    expect(settingsOf("client").map((setting) => setting.flag)).toEqual(["--url", "--token", "--ca", "--cert", "--key"]);
    expect(settingsOf("agent").map((setting) => setting.flag)).toEqual([
      "--data-dir",
      "--registry-addr",
      "--ollama-url",
      "--inventory-interval",
      "--hostname",
      "--label",
      "--state-file",
      "--token",
      "--tls",
      "--ca",
      "--cert",
      "--key",
      "--log-level",
    ]);
    expect(settingsOf("serve").map((setting) => setting.env ?? setting.flag)).toEqual([
      "HEARTBEAT_INTERVAL",
      "AGENT_TIMEOUT",
      "REGISTRY_GRPC_LISTEN",
      "REGISTRY_HTTP_LISTEN",
      "REGISTRY_DATA_DIR",
      "REGISTRY_STORE",
      "REGISTRY_OFFLINE_GUARD",
      "REGISTRY_OFFLINE_GUARD_MIN_FLEET",
      "REGISTRY_OFFLINE_GUARD_MAX_HOLD",
      "REGISTRY_MAX_BEATS_PER_SECOND",
      "REGISTRY_PROBE_INTERVAL",
      "REGISTRY_TOKENS",
      "REGISTRY_TOKEN_FILE",
      "REGISTRY_TLS_CERT",
      "REGISTRY_TLS_KEY",
      "REGISTRY_TLS_CLIENT_CA",
      "REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED",
      ...LIMIT_SETTINGS.map((setting) => setting.env),
      "LOG_LEVEL",
      "LOG_FORMAT",
    ]);
  });

  it("holds every limit in LIMIT_SETTINGS, one a LimitsConfig field", () => {
    const limitRows = Object.values(SETTINGS).filter((setting) => "configKey" in setting);

    expect(LIMIT_SETTINGS).toEqual(limitRows);
    expect(LIMIT_SETTINGS.map((setting) => setting.configKey).sort()).toEqual(Object.keys(DEFAULT_LIMITS).sort());
  });

  it("keeps the defaults that were exported by variable before it", () => {
    expect(DEFAULTS).toEqual({
      HEARTBEAT_INTERVAL: "30",
      AGENT_TIMEOUT: "60",
      REGISTRY_GRPC_LISTEN: "127.0.0.1:50051",
      REGISTRY_HTTP_LISTEN: "127.0.0.1:50052",
      REGISTRY_ADDR: "127.0.0.1:50051",
      REGISTRY_URL: "http://127.0.0.1:50052",
    });
  });
});

describe("a setting as people read it", () => {
  it("shows its default value, what a computed default is, none or off", () => {
    expect([SETTINGS.heartbeatInterval, SETTINGS.dataDir, SETTINGS.hostname, SETTINGS.tokenFile, SETTINGS.labels, SETTINGS.tls].map(shownDefault)).toEqual([
      "30",
      "~/.ollama-router",
      "the OS host name",
      "none",
      "none",
      "off",
    ]);
  });

  it("is named by its flag and, where it has one, its variable", () => {
    expect([flagAndEnv(SETTINGS.tlsCert), flagAndEnv(SETTINGS.stateFile)]).toEqual(["--tls-cert (REGISTRY_TLS_CERT)", "--state-file"]);
  });

  it("has help of its own in each command where the commands use it differently", () => {
    expect(helpFor(SETTINGS.ca, "agent")).toBe("CA certificates (PEM) to verify the registry by; turns TLS on");
    expect(helpFor(SETTINGS.ca, "client")).toBe("CA certificates (PEM) to verify an https:// registry by");
  });
});
