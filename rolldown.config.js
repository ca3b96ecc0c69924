// The command line and server as one bundle, dist/bundle/agent-registry.js (what `bin` and `npm start`
// run): Node then loads one file instead of some 300 modules, which was half of a cold start. Built from
// tsc's output, not from the sources, so there is one compiler. Left as packages, loaded from node_modules:
// better-sqlite3 (a native addon), @grpc/reflection (reads its .proto files from its own directory; loaded
// on the first reflection call) and @grpc/proto-loader (grpc-js loads it only for channelz and ORCA, which
// the server does not serve). The SQLite store's writer thread is its own entry, beside the store's chunk.

import { defineConfig } from "rolldown";

export default defineConfig({
  input: {
    "agent-registry": "dist/src/cli/main.js",
    "sqlite-writer": "dist/src/store/sqlite-writer.js",
  },
  platform: "node",
  external: [/^better-sqlite3(\/|$)/, /^@grpc\/reflection(\/|$)/, /^@grpc\/proto-loader(\/|$)/],
  logLevel: "warn",
  output: {
    dir: "dist/bundle",
    format: "esm",
    entryFileNames: "[name].js",
    chunkFileNames: "[name]-[hash].js",
    cleanDir: true,
    // Not minified: a stack trace in a debug log names the real functions.
    sourcemap: true,
  },
});
