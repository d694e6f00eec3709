// The console's build: the binding's TypeScript sources (its remote client, browser side)
// bundled in, never its WebAssembly core, so ui/dist depends on the binding's remote API
// alone and is the same bytes on every machine.
import { defineConfig, type Plugin } from "vite";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const binding = resolve(here, "../bindings/typescript/src");

/** Inside the binding: its browser platform file, and a stub for the in-process core. */
function bindingForBrowser(): Plugin {
  return {
    name: "hms-binding-browser",
    enforce: "pre",
    resolveId(source, importer) {
      if (importer === undefined || !importer.startsWith(binding)) return null;
      if (source === "./platform.js") return join(binding, "platform-browser.ts");
      if (source === "./wasm.js") return join(here, "src", "no-wasm.ts");
      if (source === "@bjorn3/browser_wasi_shim") return join(here, "src", "no-wasm.ts");
      return null;
    },
  };
}

export default defineConfig({
  base: "/ui/",
  root: here,
  plugins: [bindingForBrowser()],
  resolve: {
    alias: { "hms-agent-lifecycle": join(binding, "index.ts") },
    // The binding's imports resolve to the console's own (pinned) copies.
    dedupe: ["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-web"],
  },
  esbuild: { jsx: "automatic", jsxImportSource: "preact", legalComments: "none" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 600,
  },
});
