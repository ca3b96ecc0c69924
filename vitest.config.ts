import { defineConfig } from "vitest/config";

// VITEST_JSON=<file> also writes vitest's JSON report there (.ci/run reads its counts).
const jsonReport = process.env["VITEST_JSON"];

export default defineConfig({
  test: {
    globalSetup: ["test/support/build.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    reporters: jsonReport === undefined ? ["default"] : ["default", ["json", { outputFile: jsonReport }]],
    projects: [
      {
        extends: true,
        test: { name: "unit and integration", include: ["test/**/*.test.ts"], exclude: ["test/reliability/**"] },
      },
      {
        // Fleets, crashes, stalls and storms measure timing under load: they run after the rest, one file
        // at a time, so another test's load on this 2-core machine is not mistaken for the server's.
        extends: true,
        test: {
          name: "reliability",
          include: ["test/reliability/**/*.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
