// The browser page's script, bundled with the package (esbuild, the "browser" build: the
// WASI shim and connect-web): runs the shared scenarios against the WebAssembly core and,
// cross-origin, against a real server (Connect and gRPC-Web); reports to window.__results.
import { LifecycleManager, LifecycleState } from "hms-agent-lifecycle";
import { runScenario } from "../scenarios.mjs";

const results = [];
window.__results = results;

async function main() {
  const params = new URLSearchParams(location.search);
  const remote = params.get("remote") === "1";
  // A fresh server per scenario, started by the test's web server (another origin).
  const fresh = async (plugins) => (await (await fetch(`/server${plugins ? `?plugins=${encodeURIComponent(plugins)}` : ""}`, { method: "POST" })).json()).url;
  const stop = (url) => fetch(`/server/stop?url=${encodeURIComponent(url)}`, { method: "POST" });
  const scenarios = await (await fetch("/scenarios.json")).json();
  const log = (line) => {
    const el = document.getElementById("log");
    el.textContent += line + "\n";
  };

  // The 5.3-style use in a page: embedded, instantiation timed.
  const t0 = performance.now();
  const m = new LifecycleManager();
  await m.registerAgent("agent-001");
  const r = await m.transitionState({ agentId: "agent-001", targetState: LifecycleState.Active, reason: "page" });
  results.push({ name: "embedded: first transition", ok: r.success, ms: performance.now() - t0 });
  await m.close();

  const modes = [["embedded", undefined]];
  if (remote) {
    modes.push(["remote (connect)", "connect"]);
    modes.push(["remote (grpc-web)", "grpc-web"]);
  }
  for (const [mode, transport] of modes) {
    for (const sc of scenarios) {
      const name = `${mode}: ${sc.file}`;
      const plugins = sc.config?.plugin_repo;
      if (plugins !== undefined && transport === undefined) continue; // a page has no plugin repository (below)
      const url = transport ? await fresh(plugins) : undefined;
      const make = () => (transport ? new LifecycleManager({ endpoint: url, transport }) : new LifecycleManager());
      if (mode !== "embedded" && sc.steps.some((s) => s.hooks !== undefined)) {
        // A page cannot open ServeHooks (a stream both ways): the binding says so clearly.
        const mm = make();
        try {
          await mm.handleCallback("x", () => true);
          results.push({ name, ok: false, error: "handleCallback worked in a browser" });
        } catch (e) {
          results.push({ name: `${name} (hooks: a clear error)`, ok: e.code === "UNIMPLEMENTED" && /browser/.test(e.message), error: e.message });
        } finally {
          await mm.close();
          await stop(url);
        }
        continue;
      }
      const mm = make();
      const t = performance.now();
      try {
        await runScenario(mm, sc);
        results.push({ name, ok: true, ms: performance.now() - t });
        log(`ok ${name}`);
      } catch (e) {
        results.push({ name, ok: false, error: String(e && e.message) });
        log(`FAIL ${name}: ${e && e.message}`);
      } finally {
        await mm.close();
        if (url) await stop(url);
      }
    }
  }
  // The embedded plugin service in a page: its module loads, the registry is empty (no
  // repository: a page has no file system), scan says why, and a repository is refused.
  {
    const p = new LifecycleManager();
    try {
      const list = await p.plugins.list();
      let scan = "";
      try {
        await p.plugins.scan();
      } catch (e) {
        scan = `${e.code}: ${e.message}`;
      }
      results.push({ name: "embedded plugin service in a page (no repository)", ok: list.plugins.length === 0 && /^FAILED_PRECONDITION: .*no plugin repository/.test(scan), error: scan });
    } finally {
      await p.close();
    }
    const r = new LifecycleManager({ pluginRepository: "/somewhere" });
    try {
      await r.plugins.list();
      results.push({ name: "embedded plugin repository in a page: a clear error", ok: false, error: "it was accepted" });
    } catch (e) {
      results.push({ name: "embedded plugin repository in a page: a clear error", ok: e.code === "INVALID_ARGUMENT" && /page has no file system/.test(e.message), error: e.message });
    } finally {
      await r.close();
    }
  }

  // Watch in a page: resume and break.
  const wurl = remote ? await fresh() : undefined;
  const w = new LifecycleManager(wurl ? { endpoint: wurl } : undefined);
  await w.registerAgent("page-w");
  await w.transitionState({ agentId: "page-w", targetState: LifecycleState.Active });
  const seen = [];
  for await (const ev of w.watchEvents("page-w", undefined, undefined, { fromSequence: 1 })) {
    if (ev.agentId !== "page-w") continue;
    seen.push(ev.newState);
    if (seen.length === 2) break;
  }
  results.push({ name: `watch in a page, ${wurl ? "cross-origin" : "embedded"} (resume, break)`, ok: seen.join() === "1,2" });
  await w.close();
  if (wurl) await stop(wurl);
}

main().then(
  () => (window.__done = true),
  (e) => {
    results.push({ name: "page", ok: false, error: String(e && e.stack) });
    window.__done = true;
  },
);
