// The front end: the GraphiQL playground (index.html, served at /) and the merchandisers'
// dashboard (dashboard/index.html, served at /dashboard), built into dist/, which the Go
// package beside this file embeds. Everything is bundled: the pages load nothing from
// another origin.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  // Pages and assets are served from the root of the API's origin.
  base: "/",
  esbuild: { jsx: "automatic" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The committed build must be the same on every machine: no source maps (they embed
    // absolute paths), and a report that does not depend on the terminal.
    sourcemap: false,
    reportCompressedSize: false,
    // GraphiQL's editor (Monaco) is a few megabytes whatever is done; do not warn about it.
    chunkSizeWarningLimit: 5000,
    rollupOptions: {
      // React libraries mark modules "use client" for server rendering, which a browser
      // bundle has no use for: not worth a warning per module.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
      input: {
        playground: resolve(import.meta.dirname, "index.html"),
        dashboard: resolve(import.meta.dirname, "dashboard/index.html"),
      },
    },
  },
  worker: { format: "es" },
});
