import { describe, expect, it } from "vitest";
import {
  compareAgents,
  matches,
  pageOf,
  parseLabelSelector,
  parsePageSize,
  parsePageToken,
} from "../../src/registry/agent-query.js";
import { thrownBy as thrown } from "../support/registry-errors.js";
import { record } from "../support/records.js";

/** A query that matches every agent. */
const EVERY_AGENT = { status: undefined, labels: [] } as const;

describe("parseLabelSelector", () => {
  it("matches everything when empty or blank", () => {
    expect(parseLabelSelector("")).toEqual([]);
    expect(parseLabelSelector("  ")).toEqual([]);
  });

  it("reads comma-separated key=value pairs, trimming spaces", () => {
    expect(parseLabelSelector("gpu=a100, zone = eu")).toEqual([
      ["gpu", "a100"],
      ["zone", "eu"],
    ]);
  });

  it("allows an empty value", () => {
    expect(parseLabelSelector("spare=")).toEqual([["spare", ""]]);
  });

  it.each(["gpu", "=a100", "gpu=a=b", "gpu=a100,", "gpu=a100,,zone=eu"])("rejects %j, naming label_selector", (selector) => {
    const error = thrown(() => parseLabelSelector(selector));
    expect(error.kind).toBe("invalidArgument");
    expect(error.message).toMatch(/^label_selector: /);
  });
});

describe("parsePageSize", () => {
  it("accepts 0 (everything) and positive sizes", () => {
    expect(parsePageSize(0)).toBe(0);
    expect(parsePageSize(50)).toBe(50);
  });

  it.each([-1, 2.5])("rejects %d, naming page_size", (size) => {
    const error = thrown(() => parsePageSize(size));
    expect(error.kind).toBe("invalidArgument");
    expect(error.message).toMatch(/^page_size: /);
  });
});

describe("parsePageToken", () => {
  it("starts from the beginning when the token is empty", () => {
    expect(parsePageToken("")).toBeUndefined();
  });

  it.each([
    "garbage!!",
    "not-a-token",
    Buffer.from('{"hostname":"a"}').toString("base64url"),
    Buffer.from('["a",1]').toString("base64url"),
    Buffer.from('["a","b","c"]').toString("base64url"),
  ])("rejects %j, naming page_token", (token) => {
    const error = thrown(() => parsePageToken(token));
    expect(error.kind).toBe("invalidArgument");
    expect(error.message).toMatch(/^page_token: /);
  });

  it("reads back the token of a page", () => {
    const sorted = [record("a", "1"), record("b", "2"), record("c", "3")];
    const { nextPageToken } = pageOf(sorted, { ...EVERY_AGENT, pageSize: 2, after: undefined });
    expect(parsePageToken(nextPageToken)).toEqual(["b", "2"]);
  });
});

describe("matches", () => {
  const agent = record("a", "1", { status: "online", labels: { gpu: "a100", zone: "eu" } });

  it("needs every selected label to match", () => {
    expect(matches(agent, { status: undefined, labels: [["gpu", "a100"]] })).toBe(true);
    expect(matches(agent, { status: undefined, labels: [["gpu", "a100"], ["zone", "us"]] })).toBe(false);
    expect(matches(agent, { status: undefined, labels: [["rack", ""]] })).toBe(false);
  });

  it("filters by status", () => {
    expect(matches(agent, { status: "online", labels: [] })).toBe(true);
    expect(matches(agent, { status: "offline", labels: [] })).toBe(false);
  });
});

describe("pageOf", () => {
  const sorted = ["a", "b", "c", "d", "e"].map((hostname, i) => record(hostname, String(i)));

  it("returns everything, without a next token, when the page size is 0", () => {
    expect(pageOf(sorted, { ...EVERY_AGENT, pageSize: 0, after: undefined })).toEqual({ agents: sorted, nextPageToken: "" });
  });

  it("gives no next token on the last page", () => {
    const first = pageOf(sorted, { ...EVERY_AGENT, pageSize: 3, after: undefined });
    const second = pageOf(sorted, { ...EVERY_AGENT, pageSize: 3, after: parsePageToken(first.nextPageToken) });
    expect(second.agents.map((a) => a.hostname)).toEqual(["d", "e"]);
    expect(second.nextPageToken).toBe("");
  });

  it("continues after the last key seen even if that agent is gone", () => {
    const first = pageOf(sorted, { ...EVERY_AGENT, pageSize: 2, after: undefined });
    const withoutB = sorted.filter((a) => a.hostname !== "b");
    const second = pageOf(withoutB, { ...EVERY_AGENT, pageSize: 2, after: parsePageToken(first.nextPageToken) });
    expect(second.agents.map((a) => a.hostname)).toEqual(["c", "d"]);
  });

  it("pages through the matching agents only, and ends without a token when no match is left", () => {
    const mixed = sorted.map((a, i) => ({ ...a, status: i % 2 === 0 ? ("online" as const) : ("offline" as const) }));
    const online = { status: "online" as const, labels: [] };
    const first = pageOf(mixed, { ...online, pageSize: 2, after: undefined });
    expect(first.agents.map((a) => a.hostname)).toEqual(["a", "c"]);
    const second = pageOf(mixed, { ...online, pageSize: 2, after: parsePageToken(first.nextPageToken) });
    expect(second.agents.map((a) => a.hostname)).toEqual(["e"]);
    expect(second.nextPageToken).toBe("");
    const lastOnline = pageOf(mixed.slice(0, 4), { ...online, pageSize: 2, after: undefined });
    expect(lastOnline.nextPageToken).toBe("");
  });

  it("matches and returns each agent's current record, not the one it was sorted with", () => {
    const now = new Map(sorted.map((a) => [a.id, { ...a, status: "offline" as const }]));
    const page = pageOf(sorted, { status: "offline", labels: [], pageSize: 0, after: undefined }, (a) => now.get(a.id) ?? a);
    expect(page.agents).toEqual([...now.values()]);
  });
});

describe("compareAgents", () => {
  it("orders by hostname, then id", () => {
    const agents = [record("b", "1"), record("a", "2"), record("a", "1")];
    expect(agents.sort(compareAgents).map((a) => `${a.hostname}/${a.id}`)).toEqual(["a/1", "a/2", "b/1"]);
  });
});
