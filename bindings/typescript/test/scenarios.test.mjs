// The shared conformance scenarios, embedded (the WebAssembly core, the plugin scenarios
// included) and against a real server over Connect (and gRPC for one run).
import { test } from "node:test";
import assert from "node:assert/strict";
import { LifecycleManager } from "../dist/index.js";
import { runScenario } from "./scenarios.mjs";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PluginState } from "../dist/gen/hms/plugin/lifecycle/v1/plugin_lifecycle_pb.js";
import { copyPluginRepo, loadScenarios, startServer } from "./helpers.mjs";

const scenarios = loadScenarios();

for (const sc of scenarios) {
  // The plugin scenarios too: the plugin service's module reads a copy of the scenario's
  // repository (node:wasi preopens it); their plugins have no runtime block, so activation
  // starts no process.
  test(`embedded: ${sc.file}`, async () => {
    const repo = sc.config?.plugin_repo !== undefined ? copyPluginRepo(sc.config.plugin_repo) : undefined;
    const m = new LifecycleManager(repo ? { pluginRepository: repo.dir } : {});
    try {
      await runScenario(m, sc);
    } finally {
      await m.close();
      repo?.remove();
    }
  });
}

for (const transport of ["connect", "grpc"]) {
  for (const sc of scenarios) {
    if (transport === "grpc" && sc.config?.plugin_repo !== undefined) continue;
    test(`remote (${transport}): ${sc.file}`, async () => {
      const srv = await startServer([], { pluginRepo: sc.config?.plugin_repo });
      const m = new LifecycleManager({ endpoint: srv.url, transport });
      try {
        await runScenario(m, sc);
      } finally {
        await m.close();
        await srv.stop();
      }
    });
  }
}

test("embedded plugin service: a runtime block is refused with FAILED_PRECONDITION, recording nothing", async () => {
  const repo = copyPluginRepo("plugins");
  const dir = join(repo.dir, "runner-1.0.0");
  mkdirSync(dir);
  writeFileSync(join(dir, "plugin-manifest.json"), JSON.stringify({
    manifestVersion: "1.0", hmaVersion: "1.3", id: "com.example.runner", version: "1.0.0", name: "Runner",
    type: "L3-Capability", implementedPorts: ["PluginExecutionPort"], consumedCorePorts: ["EventBusPort"],
    runtime: { command: "./run.sh" },
  }));
  const m = new LifecycleManager({ pluginRepository: repo.dir });
  try {
    // Registered by the scan at open (the repository is read through WASI).
    assert.equal((await m.plugins.get("com.example.runner", "1.0.0")).plugin.state, PluginState.REGISTERED);
    await m.plugins.call("loadPlugin", { id: "com.example.runner", version: "1.0.0" });
    const before = (await m.plugins.get("com.example.runner", "1.0.0")).plugin;
    await assert.rejects(m.plugins.activate("com.example.runner", "1.0.0"), (e) => {
      assert.equal(e.code, "FAILED_PRECONDITION");
      assert.match(e.message, /WebAssembly core cannot start processes/);
      return true;
    });
    const after = (await m.plugins.get("com.example.runner", "1.0.0")).plugin;
    assert.equal(after.state, before.state); // still Inactive
    assert.equal(after.revision, before.revision);
    // Without a runtime block the same module activates (nothing to start).
    await m.plugins.call("loadPlugin", { id: "com.example.greeter", version: "1.1.0" });
    assert.equal((await m.plugins.activate("com.example.greeter", "1.1.0")).plugin.state, PluginState.ACTIVE);
  } finally {
    await m.close();
    repo.remove();
  }
});

test("embedded plugin service without a repository: an empty registry, scan says why", async () => {
  const m = new LifecycleManager();
  try {
    assert.equal((await m.plugins.list()).plugins.length, 0);
    await assert.rejects(m.plugins.scan(), { code: "FAILED_PRECONDITION", message: /no plugin repository/ });
    await assert.rejects(m.plugins.get("x", "1.0.0"), { code: "NOT_FOUND" });
    // The agent service is unaffected (another module).
    await m.registerAgent("a");
    assert.equal((await m.getState("a")).state, 1);
  } finally {
    await m.close();
  }
});
