import { readFile } from "node:fs/promises";
import { beforeAll, describe, expect, it } from "vitest";
import { type DecodedAgent, decodeAgents, encodeAgent, encodeAgentParts, encodeAgents, lineOf } from "../../src/store/agents-file-format.js";
import type { SecretHash } from "../../src/registry/agent-secret.js";
import { PROTOTYPE_FILE, PROTOTYPE_ROW, anAgent, anInventory } from "./agent-records.js";

const ID_1 = "9b2d7c4e-1a3f-4e8b-a6d5-0c7f2e9b1a48";
const ID_2 = "e4a1f6b2-7c3d-4a9e-8f15-6b2c0d9e3a71";
const ID_3 = "3f2b8c1e-6d4a-4f7e-9b1c-2a5d8e7f6c30";
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const PROTOTYPE_KEYS = ["id", "hostname", "ip_address", "port", "ollama_version", "status", "last_heartbeat", "registered_at"];

let prototypeText: string;

beforeAll(async () => {
  prototypeText = await readFile(PROTOTYPE_FILE, "utf8");
});

/** One agent as the prototype wrote it, with `overrides` applied (undefined removes a key). */
function row(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = { ...PROTOTYPE_ROW };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base;
}

const fileOf = (...rows: unknown[]): string => JSON.stringify(rows);

describe("decoding a file the Rust prototype wrote", () => {
  it("reads every agent with its values unchanged", () => {
    const agents = decodeAgents(prototypeText).map((agent) => agent.record);

    expect(agents).toEqual([
      {
        id: ID_1,
        hostname: "gpu-node-01",
        ipAddress: "10.0.0.11",
        port: 11434,
        ollamaVersion: "0.1.32",
        status: "online",
        lastHeartbeat: Date.parse("2024-05-01T12:00:00.123Z"),
        registeredAt: Date.parse("2024-04-30T08:15:42.987Z"),
        labels: {},
        draining: false,
        streamConnected: false,
        livenessHeld: false,
      },
      {
        id: ID_2,
        hostname: "gpu-node-02",
        ipAddress: "10.0.0.12",
        port: 11434,
        ollamaVersion: "",
        status: "offline",
        lastHeartbeat: Date.parse("2024-05-01T11:58:30.000Z"),
        registeredAt: Date.parse("2024-04-29T22:01:05Z"),
        labels: {},
        draining: false,
        streamConnected: false,
        livenessHeld: false,
      },
      {
        id: ID_3,
        hostname: "gpu-node-03",
        ipAddress: "10.0.0.13",
        port: 11434,
        ollamaVersion: "0.1.33",
        status: "online",
        lastHeartbeat: Date.parse("2024-05-01T11:59:59.250Z"),
        registeredAt: Date.parse("2024-04-30T09:00:00.500Z"),
        labels: {},
        draining: false,
        streamConnected: false,
        livenessHeld: false,
      },
    ]);
  });

  it("keeps no extra keys for a prototype agent, which has only known ones", () => {
    expect(decodeAgents(prototypeText).map((agent) => agent.extra)).toEqual([{}, {}, {}]);
  });

  it("truncates nanosecond fractions to the millisecond rather than rounding them", () => {
    const [agent] = decodeAgents(fileOf(row({ last_heartbeat: "2024-05-01T12:00:00.999999999Z" })));

    expect(agent?.record.lastHeartbeat).toBe(Date.parse("2024-05-01T12:00:00.999Z"));
  });

  it("reads a time with a UTC offset as the same instant", () => {
    const [agent] = decodeAgents(fileOf(row({ last_heartbeat: "2024-05-01T14:00:00.5+02:00" })));

    expect(agent?.record.lastHeartbeat).toBe(Date.parse("2024-05-01T12:00:00.500Z"));
  });

  it("reads an absent ollama_version, labels and draining as empty", () => {
    const [agent] = decodeAgents(fileOf(row({ ollama_version: undefined })));

    expect(agent?.record).toMatchObject({ ollamaVersion: "", labels: {}, draining: false });
  });

  it("reads labels and draining written by this server", () => {
    const [agent] = decodeAgents(fileOf(row({ labels: { gpu: "a100", zone: "eu-1" }, draining: true })));

    expect(agent?.record).toMatchObject({ labels: { gpu: "a100", zone: "eu-1" }, draining: true });
  });

  it("stores an upper-case id in lower case", () => {
    const [agent] = decodeAgents(fileOf(row({ id: ID_1.toUpperCase() })));

    expect(agent?.record.id).toBe(ID_1);
  });

  it("reads an empty array as an empty registry", () => {
    expect(decodeAgents("[]\n")).toEqual([]);
  });
});

describe("encoding agents", () => {
  it("writes a bare array with the prototype's keys", () => {
    const written: unknown = JSON.parse(encodeAgents(decodeAgents(prototypeText)));

    expect(Array.isArray(written)).toBe(true);
    for (const entry of written as Array<Record<string, unknown>>) {
      expect(Object.keys(entry)).toEqual(expect.arrayContaining(PROTOTYPE_KEYS));
      expect(entry["port"]).toBe(11434);
    }
  });

  it("writes status as Online and Offline", () => {
    const written = JSON.parse(
      encodeAgents([
        { record: anAgent({ status: "online" }), extra: {} },
        { record: anAgent({ status: "offline" }), extra: {} },
      ]),
    ) as Array<Record<string, unknown>>;

    expect(written.map((entry) => entry["status"])).toEqual(["Online", "Offline"]);
  });

  it("writes times as RFC 3339 UTC strings", () => {
    const record = anAgent({ lastHeartbeat: Date.parse("2024-05-01T12:00:00.123Z"), registeredAt: Date.parse("2024-04-29T22:01:05Z") });
    const [entry] = JSON.parse(encodeAgents([{ record, extra: {} }])) as Array<Record<string, unknown>>;

    expect(entry?.["last_heartbeat"]).toMatch(RFC3339_UTC);
    expect(entry?.["last_heartbeat"]).toBe("2024-05-01T12:00:00.123Z");
    expect(entry?.["registered_at"]).toBe("2024-04-29T22:01:05.000Z");
  });

  it("writes the record's fields under their snake_case names", () => {
    const record = anAgent({ hostname: "box", ipAddress: "192.168.1.9", port: 8080, ollamaVersion: "0.2.0", labels: { gpu: "h100" }, draining: true });
    const [entry] = JSON.parse(encodeAgents([{ record, extra: {} }])) as Array<Record<string, unknown>>;

    expect(entry).toMatchObject({
      id: record.id,
      hostname: "box",
      ip_address: "192.168.1.9",
      port: 8080,
      ollama_version: "0.2.0",
      labels: { gpu: "h100" },
      draining: true,
    });
  });

  it("reads back exactly what it wrote", () => {
    const agents: DecodedAgent[] = decodeAgents(prototypeText);

    expect(decodeAgents(encodeAgents(agents))).toEqual(agents);
  });

  it("sets a new beat time into an agent's line parts, giving the line the agent encoded with that time has", () => {
    const later = Date.parse("2026-03-01T10:00:00.123Z");
    const agents: DecodedAgent[] = [
      ...decodeAgents(prototypeText),
      // Keys elsewhere in the line that look like the beat's own: the unknown ones, a label, a secret hash.
      {
        record: anAgent({ labels: { last_heartbeat: "x", "\"q": "\"" }, inventory: anInventory(), inventoryUpdatedAt: 1, secretHash: `sha256:${"a".repeat(64)}` as SecretHash }),
        extra: { notes: { last_heartbeat: "2020-01-01T00:00:00Z" }, status_note: '","last_heartbeat":"' },
        revision: 9,
      },
    ];
    for (const agent of agents) {
      const parts = encodeAgentParts(agent);
      expect(lineOf(parts, agent.record.lastHeartbeat)).toBe(encodeAgent(agent));
      const moved = { ...agent, record: { ...agent.record, lastHeartbeat: later } };
      expect(lineOf(parts, later)).toBe(encodeAgent(moved));
      expect(decodeAgents(`[${lineOf(parts, later)}]`)).toEqual([moved]);
    }
  });

  it("ends the file with a newline", () => {
    expect(encodeAgents([]).endsWith("\n")).toBe(true);
  });
});

describe("keys this server does not know", () => {
  const unknown = { gpu_model: "A100", notes: { racks: [1, 2], owner: null }, priority: 7 };

  it("are kept on decode", () => {
    const [agent] = decodeAgents(fileOf(row(unknown)));

    expect(agent?.extra).toEqual(unknown);
  });

  it("survive a decode and encode unchanged", () => {
    const [entry] = JSON.parse(encodeAgents(decodeAgents(fileOf(row(unknown))))) as Array<Record<string, unknown>>;

    expect(entry).toMatchObject(unknown);
  });

  it("keep a key named __proto__ as a key, through a decode and encode", () => {
    const text = fileOf(row()).replace('"id":', '"__proto__":{"polluted":true},"id":');
    const [agent] = decodeAgents(text);

    expect(Object.keys(agent?.extra ?? {})).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(encodeAgents(agent === undefined ? [] : [agent])).toContain('"__proto__":{"polluted":true}');
  });

  it("never override the known fields on encode", () => {
    const [agent] = decodeAgents(fileOf(row()));
    const record = anAgent({ id: agent!.record.id, hostname: "renamed" });
    const [entry] = JSON.parse(encodeAgents([{ record, extra: { hostname: "stale", gpu_model: "A100" } }])) as Array<
      Record<string, unknown>
    >;

    expect(entry).toMatchObject({ hostname: "renamed", gpu_model: "A100" });
  });
});

describe("the agent secret's hash", () => {
  const HASH = `sha256:${"ab".repeat(32)}`;

  it("is read from secret_hash and written back beside the prototype's keys", () => {
    const [agent] = decodeAgents(fileOf(row({ secret_hash: HASH })));
    expect(agent?.record.secretHash).toBe(HASH);
    expect(agent?.extra).toEqual({});
    const [written] = JSON.parse(encodeAgents(agent === undefined ? [] : [agent])) as Array<Record<string, unknown>>;
    expect(written?.["secret_hash"]).toBe(HASH);
  });

  it("is absent for an agent without one (a prototype file), and no key is written for it", () => {
    const [agent] = decodeAgents(fileOf(row()));
    expect(agent?.record.secretHash).toBeUndefined();
    expect(encodeAgents(agent === undefined ? [] : [agent])).not.toContain("secret_hash");
  });
});

describe("the node's inventory", () => {
  it("is written under its own key, in snake_case with RFC 3339 times, beside the prototype's keys unchanged", () => {
    const record = anAgent({ inventory: anInventory(), inventoryUpdatedAt: Date.parse("2024-05-01T12:00:01Z") });
    const [entry] = JSON.parse(encodeAgents([{ record, extra: {} }])) as Array<Record<string, unknown>>;

    expect(Object.keys(entry ?? {})).toEqual(expect.arrayContaining([...PROTOTYPE_KEYS, "inventory"]));
    expect(entry?.["ollama_version"]).toBe("0.1.32");
    expect(entry?.["inventory"]).toMatchObject({
      updated_at: "2024-05-01T12:00:01.000Z",
      gpus: [{ index: 0, name: "NVIDIA A100-SXM4-80GB", memory_total_bytes: 81920 * 2 ** 20, utilization_percent: 42 }, { index: 1, name: "NVIDIA GH200 480GB" }],
      models: [{ name: "llama3.1:8b", loaded: true, vram_bytes: 6_012_954_624, expires_at: "2024-05-01T12:05:00.000Z" }, { name: "qwen2.5:72b", loaded: false }],
    });
    expect(decodeAgents(encodeAgents([{ record, extra: {} }]))[0]?.record).toEqual(record);
  });

  it("is absent for a prototype agent, and no key is written for it", () => {
    const [agent] = decodeAgents(fileOf(row()));
    expect(agent?.record.inventory).toBeUndefined();
    expect(encodeAgents(agent === undefined ? [] : [agent])).not.toContain("inventory");
  });

  it("that breaks the limits makes the file unusable, naming the agent and the field", () => {
    const gpus = [{ index: 0, uuid: "GPU-a", name: "T4", utilization_percent: 300 }];
    expect(() => decodeAgents(fileOf(row({ inventory: { updated_at: "2024-05-01T12:00:01Z", gpus } })))).toThrow(
      new RegExp(`agent #1 \\(id ${ID_1}\\): inventory\\.gpus\\[0\\]\\.utilization_percent: must be a whole number from 0 to 100, got 300`),
    );
  });
});

describe("a file that is not valid", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["is a JSON object, not an array", JSON.stringify({ agents: [] }), /expected a JSON array of agents, found an object/],
    ["is a JSON string, not an array", JSON.stringify("agents"), /expected a JSON array of agents, found a string/],
    ["is not JSON", "[{\"id\": ", /not valid JSON/],
    ["is empty", "", /the file is empty/],
    ["holds only whitespace", "  \n\t", /the file is empty/],
    ["holds an entry that is not an object", fileOf(row(), 42), /agent #2: expected an object, found a number/],
    ["holds an entry that is null", fileOf(null), /agent #1: expected an object, found null/],
    ["lacks a hostname", fileOf(row({ id: ID_2 }), row({ hostname: undefined })), new RegExp(`agent #2 \\(id ${ID_1}\\): "hostname" is missing`)],
    ["lacks an id", fileOf(row({ id: undefined })), /agent #1: "id" is missing/],
    ["has a port that is a string", fileOf(row({ port: "abc" })), new RegExp(`agent #1 \\(id ${ID_1}\\): "port" must be a number, found a string \\("abc"\\)`)],
    ["has a port above 65535", fileOf(row({ port: 70000 })), /agent #1 \(id .*\): "port" must be an integer from 0 to 65535, got 70000/],
    ["has a negative port", fileOf(row({ port: -1 })), /agent #1 \(id .*\): "port" must be an integer from 0 to 65535, got -1/],
    ["has a fractional port", fileOf(row({ port: 11434.5 })), /agent #1 \(id .*\): "port" must be an integer/],
    ["has status Up", fileOf(row({ status: "Up" })), /agent #1 \(id .*\): "status" must be "Online" or "Offline", got "Up"/],
    ["has status in lower case", fileOf(row({ status: "online" })), /agent #1 \(id .*\): "status" must be "Online" or "Offline", got "online"/],
    ["has a last_heartbeat that is not a time", fileOf(row({ last_heartbeat: "yesterday" })), /agent #1 \(id .*\): "last_heartbeat" must be an RFC 3339 time .*got "yesterday"/],
    ["has a registered_at without a zone", fileOf(row({ registered_at: "2024-05-01T12:00:00" })), /agent #1 \(id .*\): "registered_at" must be an RFC 3339 time/],
    ["has a time with month 13", fileOf(row({ last_heartbeat: "2024-13-01T00:00:00Z" })), /"last_heartbeat" must be an RFC 3339 time/],
    ["has a time with month 13 in the form this server writes", fileOf(row({ last_heartbeat: "2024-13-01T00:00:00.000Z" })), /"last_heartbeat" must be an RFC 3339 time/],
    ["has a time as epoch seconds", fileOf(row({ last_heartbeat: 1714564800 })), /agent #1 \(id .*\): "last_heartbeat" must be a string, found a number/],
    ["has an id that is not a UUID", fileOf(row({ id: "node-1" })), /agent #1: "id" must be a UUID, got "node-1"/],
    ["has the nil UUID as id", fileOf(row({ id: "00000000-0000-0000-0000-000000000000" })), /agent #1: "id" must be a UUID/],
    ["has the same id twice", fileOf(row(), row({ hostname: "gpu-node-02" })), new RegExp(`agent #2: id ${ID_1} appears more than once`)],
    ["has the same id twice in different case", fileOf(row(), row({ id: ID_1.toUpperCase() })), new RegExp(`agent #2: id ${ID_1} appears more than once`)],
    ["has a label with a number value", fileOf(row({ labels: { gpu: "a100", count: 4 } })), /agent #1 \(id .*\): label "count" must be a string, found a number/],
    ["has labels that are an array", fileOf(row({ labels: ["gpu"] })), /agent #1 \(id .*\): "labels" must be an object of strings, found an array/],
    ["has draining that is not a boolean", fileOf(row({ draining: "yes" })), /agent #1 \(id .*\): "draining" must be a boolean/],
    ["has an ollama_version that is a number", fileOf(row({ ollama_version: 1 })), /agent #1 \(id .*\): "ollama_version" must be a string/],
    ["has a secret_hash that is not sha256:<hex>", fileOf(row({ secret_hash: "hunter2" })), /agent #1 \(id .*\): "secret_hash" must be "sha256:" and 64 lower-case hex digits/],
  ];

  it.each(cases)("is rejected when it %s", (_what, text, message) => {
    expect(() => decodeAgents(text)).toThrow(message);
  });
});
