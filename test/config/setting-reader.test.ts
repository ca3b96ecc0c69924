// The one lookup (src/config/setting-reader.ts) and its whitespace rule, the same for every setting of every
// command: values are trimmed, a variable that is empty or only whitespace is unset, and a flag given empty
// is still given (its parser names the flag and says what it wants).

import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { loadAgentConfig } from "../../src/config/agent-config.js";
import { loadClientConfig } from "../../src/config/client-config.js";
import { loadDeregisterTarget } from "../../src/config/deregister-config.js";
import { loadLimitsConfig } from "../../src/config/limits-config.js";
import { loadLogConfig } from "../../src/config/log-config.js";
import { loadMigrateConfig } from "../../src/config/migrate-config.js";
import { loadSecurityConfig } from "../../src/config/security-config.js";
import { loadServerConfig } from "../../src/config/server-config.js";
import { type Env, type Flags, commaSeparatedEntries, settingReader } from "../../src/config/setting-reader.js";
import type { CommandName, Setting } from "../../src/config/setting.js";
import { SETTINGS } from "../../src/config/settings.js";

type SettingName = keyof typeof SETTINGS;

/** A valid value of every setting, different from its default; the compiler asks for one when a row is added. */
const SAMPLES: { readonly [N in SettingName]: string } = {
  heartbeatInterval: "5",
  agentTimeout: "12",
  grpcListen: "0.0.0.0:6000",
  httpListen: "[::1]:6001",
  dataDir: "/var/lib/agent-registry",
  store: "sqlite",
  offlineGuard: "0.7",
  offlineGuardMinFleet: "25",
  offlineGuardMaxHold: "60",
  maxBeatsPerSecond: "200",
  probeInterval: "15",
  migrateFrom: "sqlite",
  migrateTo: "json",
  force: "true",
  tokens: `agent:${"a".repeat(16)}, reader:${"b".repeat(16)}`,
  tokenFile: "/etc/agent-registry/tokens",
  tlsCert: "/etc/agent-registry/server.crt",
  tlsKey: "/etc/agent-registry/server.key",
  tlsClientCa: "/etc/agent-registry/clients-ca.crt",
  insecureAllowUnauthenticated: "true",
  maxAgents: "2000",
  maxMessageBytes: "4096",
  maxStreamsPerConnection: "100",
  maxStreams: "500",
  maxWatchers: "5",
  maxRegistrationsPerSecond: "50",
  firstBeatTimeout: "0.2",
  watchQueueLimit: "64",
  registryAddr: "10.0.0.1:50051",
  ollamaUrl: "http://10.0.0.7:11434",
  inventoryInterval: "120",
  hostname: "gpu-01",
  labels: "gpu=a100",
  stateFile: "/var/lib/agent-registry/id.json",
  deregisterStateFile: "/var/lib/agent-registry/agent-state.json",
  agentSecret: "Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1zZWNyZXQ",
  url: "https://registry.internal:50052",
  token: "agent-token-0123456789",
  tls: "true",
  ca: "/etc/agent-registry/ca.crt",
  cert: "/etc/agent-registry/me.crt",
  key: "/etc/agent-registry/me.key",
  logLevel: "debug",
  logFormat: "pretty",
};

const ROWS = Object.entries(SETTINGS) as [SettingName, Setting][];
const WITH_ENV = ROWS.filter(([, setting]) => setting.env !== undefined).map(([name, setting]) => ({ name, setting, env: setting.env ?? "" }));
const BLANKS = ["", " ", "\t", "\n", "  \t\r\n "];

/** What reading `setting` gives, in a form toEqual can compare (a URL has no own properties to compare). */
function read(setting: Setting, env: Env, flags: Flags = {}): string {
  const reader = settingReader(env, flags);
  const value = setting.kind === "value" ? reader.value(setting) : setting.kind === "switch" ? reader.isOn(setting) : reader.list(setting);
  return JSON.stringify(value) ?? "undefined";
}

describe("every setting's variable", () => {
  it.each(WITH_ENV)("$env counts as unset when it is empty or only whitespace", ({ setting, env }) => {
    for (const blank of BLANKS) expect(read(setting, { [env]: blank })).toBe(read(setting, {}));
  });

  it.each(WITH_ENV)("$env is read without the whitespace around it", ({ name, setting, env }) => {
    const plain = read(setting, { [env]: SAMPLES[name] });

    expect(plain).not.toBe(read(setting, {}));
    expect(read(setting, { [env]: ` ${SAMPLES[name]}\t\n` })).toBe(plain);
  });
});

describe("every setting's flag", () => {
  it.each(ROWS.filter(([, setting]) => setting.kind !== "switch").map(([name, setting]) => ({ name, setting, flag: setting.flag })))(
    "$flag is read without the whitespace around it",
    ({ name, setting }) => {
      // A repeatable flag takes the variable's entries one a flag.
      const flag = (pad: (value: string) => string): Flags => ({
        [setting.key]: setting.kind === "list" ? SAMPLES[name].split(",").map((entry) => pad(entry.trim())) : pad(SAMPLES[name]),
      });
      const plain = read(setting, {}, flag((value) => value));

      expect(plain).not.toBe(read(setting, {}));
      expect(read(setting, {}, flag((value) => `  ${value} `))).toBe(plain);
    },
  );

  it.each(ROWS.filter(([, setting]) => setting.kind === "value").map(([, setting]) => ({ setting, flag: setting.flag })))(
    "$flag given empty or blank is still given, and refused with a message naming it",
    ({ setting, flag }) => {
      for (const blank of BLANKS) {
        expect(() => read(setting, { ...(setting.env === undefined ? {} : { [setting.env]: "" }) }, { [setting.key]: blank })).toThrow(
          new RegExp(`^${flag}\\b`),
        );
      }
    },
  );

  it("wins over the variable, which is then not read at all", () => {
    expect(settingReader({ AGENT_TIMEOUT: "soon" }, { agentTimeout: " 20 " }).value(SETTINGS.agentTimeout)).toEqual({
      name: "--agent-timeout",
      text: "20",
      value: 20_000,
    });
  });
});

describe("a repeatable setting", () => {
  it("takes each flag as one entry, named by its place, even with commas in it", () => {
    const tokens = settingReader({ REGISTRY_TOKENS: `admin:${"c".repeat(16)}` }, { token: [` agent:${"a".repeat(16)} `, `reader:${"b".repeat(16)}`] }).list(SETTINGS.tokens);

    expect(tokens.map(({ role, source }) => `${role} ${source}`)).toEqual(["agent --token #1", "reader --token #2"]);
  });

  it("takes the variable's comma-separated entries, skipping blank ones but counting their places", () => {
    expect(commaSeparatedEntries(" a , ,\tb,", "REGISTRY_TOKENS")).toEqual([
      { value: "a", where: "REGISTRY_TOKENS entry 1" },
      { value: "b", where: "REGISTRY_TOKENS entry 3" },
    ]);
  });
});

describe("each command", () => {
  /** Every variable of `command` set to what `value` makes of its sample. */
  function envOf(command: CommandName, value: (sample: string) => string): NodeJS.ProcessEnv {
    return Object.fromEntries(WITH_ENV.filter(({ setting }) => setting.commands.includes(command)).map(({ name, env }) => [env, value(SAMPLES[name])]));
  }

  const LOADERS: { readonly [C in CommandName]: (env: NodeJS.ProcessEnv) => unknown } = {
    serve: (env) => ({ server: loadServerConfig(env), log: loadLogConfig(env) }),
    agent: (env) => loadAgentConfig(env),
    client: (env) => loadClientConfig(env),
    deregister: (env) => loadDeregisterTarget(env, {}, "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30"),
    migrate: (env) => loadMigrateConfig(env, { from: "json", to: "sqlite" }),
  };

  it.each(Object.keys(LOADERS) as CommandName[])("%s reads every variable left blank as if none were set", (command) => {
    const load = LOADERS[command];

    expect(load(envOf(command, () => " \t "))).toEqual(load({}));
  });

  it.each(Object.keys(LOADERS) as CommandName[])("%s reads every variable padded with whitespace as without it", (command) => {
    const load = LOADERS[command];
    const plain = load(envOf(command, (sample) => sample));

    expect(plain).not.toEqual(load({}));
    expect(load(envOf(command, (sample) => `\t${sample}  `))).toEqual(plain);
  });

  it("names the variable in an error after trimming it, as the value it read", () => {
    expect(() => loadServerConfig({ REGISTRY_GRPC_LISTEN: "  nowhere  " })).toThrow(
      new ConfigError('REGISTRY_GRPC_LISTEN must be host:port, e.g. 127.0.0.1:50051 or [::1]:50051 (port 0 picks a free one), got "nowhere"'),
    );
  });
});

// Before the one lookup, each of these was read its own way: an error, or the whitespace kept in the value.
describe("inputs the separate lookups read differently, now read by the one rule", () => {
  const SYSTEM_CAS = { caFile: undefined, certFile: undefined, keyFile: undefined };

  it.each<{ input: string; read: () => unknown; expected: unknown }>([
    { input: 'HEARTBEAT_INTERVAL="  "', read: () => loadServerConfig({ HEARTBEAT_INTERVAL: "  " }).heartbeatIntervalMs, expected: 30_000 },
    { input: 'REGISTRY_MAX_STREAMS="\\t"', read: () => loadLimitsConfig({ REGISTRY_MAX_STREAMS: "\t" }).maxStreams, expected: 20_000 },
    { input: 'REGISTRY_DATA_DIR=" /srv/registry "', read: () => loadServerConfig({ REGISTRY_DATA_DIR: " /srv/registry " }).dataDir, expected: "/srv/registry" },
    {
      input: 'REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED=" true "',
      read: () => loadSecurityConfig({ REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED: " true " }).allowUnauthenticated,
      expected: true,
    },
    { input: 'REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED=" "', read: () => loadSecurityConfig({ REGISTRY_INSECURE_ALLOW_UNAUTHENTICATED: " " }).allowUnauthenticated, expected: false },
    { input: 'REGISTRY_TLS=" 1 "', read: () => loadAgentConfig({ REGISTRY_TLS: " 1 " }).security.tls, expected: SYSTEM_CAS },
    { input: 'REGISTRY_TLS=" "', read: () => loadAgentConfig({ REGISTRY_TLS: " " }).security.tls, expected: undefined },
    { input: 'LOG_LEVEL=""', read: () => loadLogConfig({ LOG_LEVEL: "" }).level, expected: "info" },
    { input: 'LOG_FORMAT=" pretty "', read: () => loadLogConfig({ LOG_FORMAT: " pretty " }).format, expected: "pretty" },
    { input: '--token-file " /etc/tokens "', read: () => loadSecurityConfig({}, { tokenFile: " /etc/tokens " }).tokenFile, expected: "/etc/tokens" },
    { input: '--hostname " gpu-01 "', read: () => loadAgentConfig({}, { hostname: " gpu-01 " }).hostname, expected: "gpu-01" },
    { input: '--label " gpu=a100 "', read: () => loadAgentConfig({}, { label: [" gpu=a100 "] }).labels, expected: { gpu: "a100" } },
    { input: '--state-file " /srv/id.json "', read: () => loadAgentConfig({}, { stateFile: " /srv/id.json " }).stateFile, expected: "/srv/id.json" },
  ])("$input", ({ read: load, expected }) => {
    expect(load()).toEqual(expected);
  });

  it.each<{ input: string; load: () => unknown; message: string }>([
    { input: '--data-dir ""', load: () => loadServerConfig({}, { dataDir: "" }), message: '--data-dir must be the path of a directory, got ""' },
    { input: '--tls-cert " "', load: () => loadSecurityConfig({}, { tlsCert: " ", tlsKey: "s.key" }), message: '--tls-cert must be the path of a file, got ""' },
    { input: '--ca ""', load: () => loadClientConfig({}, { ca: "" }), message: '--ca must be the path of a file, got ""' },
  ])("$input, an empty path, is refused naming the flag", ({ load, message }) => {
    expect(load).toThrow(new ConfigError(message));
  });
});
