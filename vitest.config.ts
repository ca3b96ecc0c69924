import { defineConfig } from "vitest/config";

// VITEST_JSON=<file> also writes vitest's JSON report there (.ci/run reads its counts).
const jsonReport = process.env["VITEST_JSON"];

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/build.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    reporters: jsonReport === undefined ? ["default"] : ["default", ["json", { outputFile: jsonReport }]],
  },
});
