// Test helpers for Node: the package under test, the scenario files, and a real server.
import { spawn, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const PKG = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(PKG, "../..");
export const SCENARIOS = join(REPO, "testdata", "scenarios");

export function loadScenarios() {
  return readdirSync(SCENARIOS)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => ({ file: f, ...JSON.parse(readFileSync(join(SCENARIOS, f), "utf8")) }));
}

/** A scenario's plugin repository (relative to testdata/scenarios) copied to a temporary
 * folder: { dir, remove }. */
export function copyPluginRepo(rel) {
  const dir = mkdtempSync(join(tmpdir(), "hms-ts-plugins-"));
  cpSync(join(SCENARIOS, rel), dir, { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The server binary: HMS_SERVER_BIN, or built into build/ts once. */
export function serverBin() {
  if (process.env.HMS_SERVER_BIN) return process.env.HMS_SERVER_BIN;
  const bin = join(REPO, "build", "ts", "hms-lifecycle");
  if (!existsSync(bin)) execFileSync("go", ["build", "-o", bin, "./cmd/hms-lifecycle"], { cwd: REPO, stdio: "inherit" });
  return bin;
}

/**
 * Starts `hms-lifecycle serve --store memory --listen 127.0.0.1:0` (plus extra flags) and
 * resolves with { url, stop }. A scenario's plugin_repo is copied to a temporary folder.
 */
export async function startServer(extra = [], { pluginRepo } = {}) {
  const args = ["serve", "--store", "memory", "--listen", "127.0.0.1:0", ...extra];
  let tmp;
  if (pluginRepo) {
    tmp = mkdtempSync(join(tmpdir(), "hms-ts-plugins-"));
    cpSync(join(SCENARIOS, pluginRepo), tmp, { recursive: true });
    args.push("--plugin-repo", tmp);
  }
  const proc = spawn(serverBin(), args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const lines = createInterface({ input: proc.stdout });
  const url = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the server did not start: ${stderr}`)), 30_000);
    lines.on("line", (l) => {
      const m = /listening on (\S+)/.exec(l);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    proc.on("exit", (code) => rej(new Error(`the server exited (${code}): ${stderr}`)));
  });
  const stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };
  return { url: url.startsWith("http") ? url : `http://${url}`, stop, proc };
}
