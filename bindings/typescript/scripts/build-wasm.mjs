// Builds the lifecycle core as WebAssembly (wasm/ in the repository, GOOS=wasip1, a reactor
// with //go:wasmexport functions), stripped, twice: dist/hms_lifecycle.wasm (the agent
// service) and, with -tags hms_plugins, dist/hms_lifecycle_plugins.wasm (the plugin service
// too; see wasm/main.go for why two). Needs Go; the package it goes into does not.
// HMS_WASM=path (and HMS_WASM_PLUGINS=path) copy modules built already instead.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(pkg, "../..");
mkdirSync(join(pkg, "dist"), { recursive: true });
for (const [file, tags, prebuilt] of [
  ["hms_lifecycle.wasm", "", process.env.HMS_WASM],
  ["hms_lifecycle_plugins.wasm", "hms_plugins", process.env.HMS_WASM_PLUGINS],
]) {
  const out = join(pkg, "dist", file);
  if (prebuilt) {
    copyFileSync(prebuilt, out);
  } else {
    execFileSync(
      process.env.GO ?? "go",
      ["build", "-buildmode=c-shared", "-trimpath", `-tags=${tags}`, "-ldflags=-s -w", "-o", out, "./wasm"],
      { cwd: repo, stdio: "inherit", env: { ...process.env, GOOS: "wasip1", GOARCH: "wasm", CGO_ENABLED: "0" } },
    );
  }
  console.log(`${out}: ${statSync(out).size} bytes`);
}
