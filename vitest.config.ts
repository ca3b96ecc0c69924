import { defineConfig } from "vitest/config";

// VITEST_JSON=<file> also writes vitest's JSON report there (.ci/run reads its counts).
const jsonReport = process.env["VITEST_JSON"];

/** Integration and reliability tests run once per store (TEST_STORE, read by test/support). */
const STORES = ["json", "sqlite"] as const;

export default defineConfig({
  test: {
    globalSetup: ["test/support/build.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    reporters: jsonReport === undefined ? ["default"] : ["default", ["json", { outputFile: jsonReport }]],
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/integration/**", "test/reliability/**", "test/etcd/**", "test/dashboard/**"],
        },
      },
      ...STORES.map((store) => ({
        extends: true as const,
        test: { name: `integration (${store})`, include: ["test/integration/**/*.test.ts"], env: { TEST_STORE: store } },
      })),
      // Fleets, crashes, stalls and storms measure timing under load: they run after the rest, one file at
      // a time and one store after the other, so another test's load on this 2-core machine is not
      // mistaken for the server's.
      ...STORES.map((store, index) => ({
        extends: true as const,
        test: {
          name: `reliability (${store})`,
          include: ["test/reliability/**/*.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: index + 1 },
          env: { TEST_STORE: store },
        },
      })),
      // Replicas on a real etcd (started by each file): after the rest, one file at a time.
      {
        extends: true as const,
        test: { name: "etcd", include: ["test/etcd/**/*.test.ts"], fileParallelism: false, sequence: { groupOrder: STORES.length + 1 } },
      },
      // The dashboard in a real browser: last, so Chromium's own load does not disturb the others.
      {
        extends: true as const,
        test: { name: "dashboard", include: ["test/dashboard/**/*.test.ts"], fileParallelism: false, sequence: { groupOrder: STORES.length + 2 } },
      },
    ],
  },
});
