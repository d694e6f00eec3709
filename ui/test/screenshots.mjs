// docs/img/console-*.png (make screenshots-ui): the console's main views, light and dark,
// in headless Chromium against a real server with a small, varied fleet.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { REPO, call, openBrowser, pluginRepo, startServer, tempDir } from "./helpers.mjs";

const out = join(REPO, "docs", "img");
mkdirSync(out, { recursive: true });
const tmp = tempDir("hms-ui-shots-");
const server = await startServer(["--store", "memory", "--plugin-repo", pluginRepo(tmp.dir)]);
const browser = await openBrowser();
try {
  const u = server.url;
  const teams = ["core", "edge", "billing"];
  const paths = [["ACTIVE"], ["ACTIVE", "PAUSED"], ["ACTIVE", "MAINTENANCE"], ["ERROR"], ["ACTIVE", "SHUTTING_DOWN", "TERMINATED"], [], ["ACTIVE", "SUSPENDED"]];
  for (let i = 0; i < 42; i++) {
    const id = `agent-${String(i).padStart(3, "0")}`;
    await call(u, "RegisterAgent", { agentId: id, labels: { team: teams[i % 3], zone: `eu-${1 + (i % 2)}` } });
    for (const s of paths[i % paths.length]) await call(u, "TransitionState", { agentId: id, targetState: s, reason: `demo: ${s.toLowerCase()}` });
  }
  await call(u, "RegisterHook", {
    hookName: "change-freeze",
    triggerStates: ["LIFECYCLE_STATE_PAUSED"],
    isBlocking: true,
    timeoutMs: 500,
    config: { type: "callback", callback: "freeze-gate", failure_policy: "fail" },
    agentIds: ["agent-000"],
  });
  await call(u, "TransitionState", { agentId: "agent-000", targetState: "PAUSED", reason: "nightly pause" });
  await call(u, "ValidatePlugin", { id: "com.example.greeter", version: "1.0.0" }).catch(() => {});
  await call(u, "LoadPlugin", { id: "com.example.greeter", version: "1.1.0" });
  await call(u, "ActivatePlugin", { id: "com.example.greeter", version: "1.1.0", reason: "roll out 1.1" });

  const page = await browser.ctx.newPage();
  await page.setViewportSize({ width: 1280, height: 760 });
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    const shot = (name) => page.screenshot({ path: join(out, `console-${name}-${scheme}.png`) });

    await page.goto(`${u}/ui/`);
    await page.locator('[data-agent="agent-000"]').waitFor();
    await page.waitForTimeout(800); // labels and supervision of the visible rows
    await shot("fleet");

    await page.goto(`${u}/ui/agents/agent-000`);
    await page.getByTestId("agent-state").waitFor();
    await page.getByLabel("Reason").fill("maintenance window");
    await page.locator('[data-target="PAUSED"]').click();
    await page.getByTestId("refusal").waitFor();
    await shot("agent");

    await page.goto(`${u}/ui/events`);
    await page.locator("[data-testid=connection]", { hasText: "live" }).waitFor();
    // The feed shows what happens while the console is open.
    for (let i = 7; i < 21; i += 7) {
      const id = `agent-${String(i).padStart(3, "0")}`;
      await call(u, "TransitionState", { agentId: id, targetState: "PAUSED", reason: "drain for upgrade" });
      await call(u, "TransitionState", { agentId: id, targetState: "ACTIVE", reason: "upgrade done" });
    }
    await page.locator("[data-testid=feed] tr").nth(3).waitFor();
    await shot("events");

    await page.goto(`${u}/ui/plugins`);
    await page.locator('[data-plugin="com.example.greeter"]').waitFor();
    await shot("plugins");

    await page.goto(`${u}/ui/hooks`);
    await page.locator("tr", { hasText: "change-freeze" }).waitFor();
    await shot("hooks");
  }
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  await server.stop();
  tmp.remove();
}
