// Builds the fleet dashboard (web/) into dist/web, which the server serves at / on its HTTP port. Asset
// names carry a content hash (cached for a year); index.html does not (never cached).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    // The page is small; one script keeps its first load to two requests.
    modulePreload: false,
  },
});
