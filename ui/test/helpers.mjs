// Test helpers: a real `hms-lifecycle serve` (the binary the Makefile builds, or built
// once into build/ui), the API over Connect's JSON protocol with fetch, and Debian's
// chromium through playwright-core (never a downloaded browser).
import { spawn, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const UI = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(UI, "..");

export function serverBin() {
  if (process.env.HMS_SERVER_BIN) return process.env.HMS_SERVER_BIN;
  const bin = join(REPO, "build", "ui", "hms-lifecycle");
  if (!existsSync(bin)) execFileSync("go", ["build", "-o", bin, "./cmd/hms-lifecycle"], { cwd: REPO, stdio: "inherit" });
  return bin;
}

/** A temporary folder removed by the returned function. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The tokens file of three principals, one per role (docs/auth.md). */
export const TOKENS = {
  viewer: { name: "vera", token: "viewer-token-0123456789" },
  operator: { name: "olga", token: "operator-token-0123456789" },
  admin: { name: "ada", token: "admin-token-0123456789ab" },
};
export function writeTokens(dir) {
  const file = join(dir, "tokens.json");
  writeFileSync(
    file,
    JSON.stringify({
      principals: Object.entries(TOKENS).map(([role, p]) => ({ name: p.name, role, tokens: [p.token] })),
    }),
  );
  return file;
}

/** Copies testdata/scenarios/plugins into dir/plugins and returns its path. */
export function pluginRepo(dir) {
  const to = join(dir, "plugins");
  cpSync(join(REPO, "testdata", "scenarios", "plugins"), to, { recursive: true });
  return to;
}

/**
 * Starts `hms-lifecycle serve` with these flags (default: memory store on a free loopback
 * port) and resolves with { url, port, stop }.
 */
export async function startServer(flags = []) {
  const args = ["serve", ...flags];
  if (!flags.includes("--listen")) args.push("--listen", "127.0.0.1:0");
  if (!flags.includes("--store") && !flags.includes("--data-dir")) args.push("--store", "memory");
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
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  };
  return { url, port: Number(new URL(url).port), stop, proc, stderr: () => stderr };
}

/** Calls a unary RPC over Connect's JSON protocol; resolves with { status, body }. */
export async function rpc(url, method, body = {}, token = "") {
  const service = /Plugin/.test(method) && method !== "RegisterAgent" ? "hms.plugin.lifecycle.v1.PluginLifecycleManager" : "hms.agent.lifecycle.v1.LifecycleManager";
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/${service}/${method}`, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** Like rpc, but throws unless the call succeeded. */
export async function call(url, method, body = {}, token = "") {
  const r = await rpc(url, method, body, token);
  if (r.status !== 200) throw new Error(`${method}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Debian's chromium, headless, with a throw-away profile; close() removes it. */
export async function openBrowser() {
  const profile = tempDir("hms-ui-chromium-");
  const ctx = await chromium.launchPersistentContext(profile.dir, {
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    viewport: { width: 1366, height: 800 },
  });
  return {
    ctx,
    close: async () => {
      await ctx.close();
      profile.remove();
    },
  };
}

/** Polls f until it returns a truthy value (or throws after ms). */
export async function eventually(f, ms = 10_000, what = "the condition") {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
