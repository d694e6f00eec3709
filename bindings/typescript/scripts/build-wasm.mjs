// Builds the lifecycle core as WebAssembly (wasm/ in the repository, GOOS=wasip1, a reactor
// with //go:wasmexport functions) into dist/hms_lifecycle.wasm, stripped. Needs Go; the
// package it goes into does not. HMS_WASM=path copies a module built already instead.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(pkg, "../..");
const out = join(pkg, "dist", "hms_lifecycle.wasm");
mkdirSync(dirname(out), { recursive: true });
if (process.env.HMS_WASM) {
  copyFileSync(process.env.HMS_WASM, out);
} else {
  execFileSync(
    process.env.GO ?? "go",
    ["build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", out, "./wasm"],
    { cwd: repo, stdio: "inherit", env: { ...process.env, GOOS: "wasip1", GOARCH: "wasm", CGO_ENABLED: "0" } },
  );
}
console.log(`${out}: ${statSync(out).size} bytes`);
