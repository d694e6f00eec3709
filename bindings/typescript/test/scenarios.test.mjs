// The shared conformance scenarios, embedded (the WebAssembly core) and against a real
// server over Connect (and gRPC for one run).
import { test } from "node:test";
import assert from "node:assert/strict";
import { LifecycleManager } from "../dist/index.js";
import { runScenario } from "./scenarios.mjs";
import { loadScenarios, startServer } from "./helpers.mjs";

const scenarios = loadScenarios();

for (const sc of scenarios) {
  // The plugin service runs processes, so the WebAssembly core has none: the plugin
  // scenarios run remote only, and the test at the end checks the embedded answer.
  if (sc.config?.plugin_repo !== undefined) continue;
  test(`embedded: ${sc.file}`, async () => {
    const m = new LifecycleManager();
    try {
      await runScenario(m, sc);
    } finally {
      await m.close();
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

test("the embedded plugin service says it is remote only", async () => {
  const m = new LifecycleManager();
  await assert.rejects(m.plugins.scan(), { code: "UNIMPLEMENTED" });
  await m.close();
});
