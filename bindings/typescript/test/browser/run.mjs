// The Chromium tests: bundles page.mjs with the package (esbuild, browser build), serves it
// from one origin, starts a real server on another with --cors-origin for it, and drives
// Debian's chromium (playwright-core, executablePath /usr/bin/chromium; never a downloaded
// browser) through the page: the shared scenarios on the WebAssembly core and cross-origin
// against the server. Prints one line per result; exits 1 on a failure.
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PKG, loadScenarios, startServer } from "../helpers.mjs";

const out = join(PKG, "build", "browser");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(PKG, "test", "browser", "page.mjs")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  outfile: join(out, "page.js"),
  logLevel: "warning",
});
for (const f of ["hms_lifecycle.wasm", "hms_lifecycle_plugins.wasm"]) copyFileSync(join(PKG, "dist", f), join(out, f));
writeFileSync(join(out, "index.html"), '<!doctype html><meta charset="utf-8"><title>hms-agent-lifecycle</title><pre id="log"></pre><script type="module" src="/page.js"></script>\n');
const scenarios = JSON.stringify(loadScenarios());

// Fresh servers for the page: POST /server starts one (a scenario's plugin repository with
// ?plugins=DIR), cross-origin (its address named "localhost", the page's "127.0.0.1"), with
// --cors-origin for the page; POST /server/stop?url= stops it.
const servers = new Map();
let origin = "";
async function control(req, res, path, q) {
  if (path === "/server") {
    const s = await startServer(["--cors-origin", origin], { pluginRepo: q.get("plugins") || undefined });
    const url = s.url.replace("127.0.0.1", "localhost");
    servers.set(url, s);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ url }));
  } else {
    await servers.get(q.get("url"))?.stop();
    servers.delete(q.get("url"));
    res.writeHead(204);
    res.end();
  }
}

const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const web = createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  const path = u.pathname;
  if (req.method === "POST" && path.startsWith("/server")) {
    control(req, res, path, u.searchParams).catch((e) => {
      res.writeHead(500);
      res.end(String(e));
    });
    return;
  }
  if (path === "/scenarios.json") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(scenarios);
    return;
  }
  const file = path === "/" ? "index.html" : path.slice(1);
  try {
    const body = readFileSync(join(out, file));
    res.writeHead(200, { "content-type": types[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((r) => web.listen(0, "127.0.0.1", r));
origin = `http://127.0.0.1:${web.address().port}`;

const profile = mkdtempSync(join(tmpdir(), "hms-chromium-"));
let failed = 0;
let ctx;
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on("pageerror", (e) => console.error("page error:", e));
  page.on("console", (m) => {
    // (a call answered with an error status is logged as a failed resource: expected)
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) console.error("console:", m.text());
  });
  await page.goto(`${origin}/?remote=1`);
  await page.waitForFunction(() => window.__done === true, undefined, { timeout: 300_000 });
  const results = await page.evaluate(() => window.__results);
  for (const r of results) {
    if (r.ok) console.log(`ok ${r.name}${r.ms !== undefined ? ` (${r.ms.toFixed(0)} ms)` : ""}`);
    else {
      failed++;
      console.log(`FAIL ${r.name}: ${r.error ?? ""}`);
    }
  }
  console.log(`chromium: ${results.filter((r) => r.ok).length} passed, ${failed} failed`);
} finally {
  await ctx?.close();
  for (const s of servers.values()) await s.stop();
  web.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed > 0 ? 1 : 0);
