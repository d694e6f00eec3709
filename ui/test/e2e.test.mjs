// The console end to end: real headless Chromium (Debian's) against a real
// `hms-lifecycle serve`, through the page as an operator would use it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { TOKENS, call, eventually, openBrowser, pluginRepo, startServer, tempDir, writeTokens } from "./helpers.mjs";

let browser;
before(async () => {
  browser = await openBrowser();
});
after(async () => {
  await browser?.close();
});

/** A new page that fails the test on any uncaught error of the console. */
async function page() {
  const p = await browser.ctx.newPage();
  const errors = [];
  p.on("pageerror", (e) => errors.push(e.message));
  p.errors = errors;
  return p;
}

async function signIn(p, url, token) {
  await p.goto(`${url}/ui/`);
  await p.getByLabel("Bearer token").fill(token);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.locator("[data-testid=connection]", { hasText: "live" }).waitFor();
}

const stateOf = (p, id) => p.locator(`[data-agent="${id}"] [data-testid=state]`);

describe("without credentials", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test("an agent registered through the API appears without a reload", async () => {
    const p = await page();
    await p.goto(`${server.url}/ui/`);
    await p.locator("[data-testid=connection]", { hasText: "live" }).waitFor();
    await p.evaluate(() => ((window).__noReload = true));
    await call(server.url, "RegisterAgent", { agentId: "fleet-1", labels: { team: "core" } });
    await stateOf(p, "fleet-1").filter({ hasText: "INITIALIZED" }).waitFor();
    // Its labels come with it, and a transition through the API moves it live.
    await p.locator('[data-agent="fleet-1"]', { hasText: "team=core" }).waitFor();
    await call(server.url, "TransitionState", { agentId: "fleet-1", targetState: "ACTIVE", reason: "api" });
    await stateOf(p, "fleet-1").filter({ hasText: "ACTIVE" }).waitFor();
    assert.equal(await p.textContent("[data-testid=count-ACTIVE]"), "1");
    assert.equal(await p.evaluate(() => (window).__noReload), true, "the page was reloaded");
    // The filters: by label, by state (the chart's bar), by id.
    await call(server.url, "RegisterAgent", { agentId: "fleet-2", labels: { team: "edge" } });
    await stateOf(p, "fleet-2").waitFor();
    await p.getByLabel("Labels").first().fill("team=edge");
    await eventually(async () => (await p.locator("[data-agent]").count()) === 1, 5000, "the label filter");
    await p.getByLabel("Labels").first().fill("");
    await p.locator("button.bar.st-ACTIVE").click();
    await eventually(async () => (await p.locator("[data-agent]").count()) === 1 && (await p.locator('[data-agent="fleet-1"]').count()) === 1, 5000, "the state filter");
    await p.locator("button.bar.st-ACTIVE").click();
    await p.getByLabel("Search by id").fill("fleet-2");
    await eventually(async () => (await p.locator("[data-agent]").count()) === 1, 5000, "the search");
    assert.deepEqual(p.errors, []);
    await p.close();
  });

  test("a transition made in the console shows in the timeline and in the history", async () => {
    await call(server.url, "RegisterAgent", { agentId: "story-1" });
    const p = await page();
    await p.goto(`${server.url}/ui/agents/story-1`);
    await p.getByTestId("agent-state").filter({ hasText: "INITIALIZED" }).waitFor();
    // Only the allowed next states are offered.
    const offered = await p.locator("[data-target]").evaluateAll((bs) => bs.map((b) => b.dataset.target));
    assert.deepEqual(offered.sort(), ["ACTIVE", "ERROR", "TERMINATED"]);
    await p.getByLabel("Reason").fill("rolled out by e2e");
    await p.locator('[data-target="ACTIVE"]').click();
    await p.getByTestId("agent-state").filter({ hasText: "ACTIVE" }).waitFor();
    const item = p.locator("[data-testid=timeline] li", { hasText: "rolled out by e2e" });
    await item.waitFor();
    assert.match(await item.textContent(), /INITIALIZED\s*→\s*ACTIVE/);
    assert.match(await item.textContent(), /by anonymous/);
    const h = await call(server.url, "GetTransitionHistory", { agentId: "story-1", limit: 10 });
    const last = h.events.at(-1);
    assert.equal(last.newState, "LIFECYCLE_STATE_ACTIVE");
    assert.equal(last.reason, "rolled out by e2e");
    assert.deepEqual(p.errors, []);
    await p.close();
  });

  test("the timeline is newest first and pages back through old history", async () => {
    await call(server.url, "RegisterAgent", { agentId: "long-1" });
    for (let i = 1; i <= 119; i++) {
      await call(server.url, "TransitionState", { agentId: "long-1", targetState: i % 2 ? "ACTIVE" : "PAUSED", reason: `step ${i}` });
    }
    const p = await page();
    await p.goto(`${server.url}/ui/agents/long-1`);
    const items = p.locator("[data-testid=timeline] li");
    await p.getByText("(newest first; 120 events)").waitFor();
    assert.equal(await items.count(), 50);
    assert.match(await items.first().textContent(), /step 119/);
    assert.match(await items.last().textContent(), /step 70\b/);
    await p.getByRole("button", { name: "Show 50 older events (70 more)" }).click();
    assert.equal(await items.count(), 100);
    await p.getByRole("button", { name: "Show 20 older events (20 more)" }).click();
    assert.equal(await items.count(), 120);
    assert.match(await items.last().textContent(), /registered/);
    await p.getByText("The oldest stored event is shown.").waitFor();
    // A live event joins at the top.
    await call(server.url, "TransitionState", { agentId: "long-1", targetState: "PAUSED", reason: "live one" });
    await eventually(async () => /live one/.test(await items.first().textContent()), 5000, "the live event on top");
    assert.deepEqual(p.errors, []);
    await p.close();
  });

  test("the event feed starts with recent events, filters, and pauses", async () => {
    const p = await page();
    await p.goto(`${server.url}/ui/events`);
    const rows = p.locator("[data-testid=feed] tr");
    // Events from before the console opened (fleet-1's registration among them).
    await rows.filter({ hasText: "fleet-1" }).first().waitFor();
    await p.getByLabel("Agent, reason or initiator").fill("story-1");
    await eventually(async () => (await rows.count()) > 0 && (await rows.filter({ hasNotText: "story-1" }).count()) === 0, 5000, "the filter");
    await p.getByLabel("Agent, reason or initiator").fill("");
    await p.getByLabel("New state").selectOption({ label: "ACTIVE" });
    await eventually(async () => (await rows.count()) > 0 && (await rows.filter({ hasNotText: "→ ACTIVE" }).count()) === 0, 5000, "the state filter");
    await p.getByLabel("New state").selectOption({ label: "any" });
    await p.getByRole("button", { name: "Pause" }).click();
    const before = await rows.count();
    await call(server.url, "RegisterAgent", { agentId: "feed-1" });
    await p.getByText("1 new events while paused").waitFor();
    assert.equal(await rows.count(), before);
    assert.equal(await rows.filter({ hasText: "feed-1" }).count(), 0);
    await p.getByRole("button", { name: "Resume" }).click();
    await rows.filter({ hasText: "feed-1" }).waitFor();
    assert.deepEqual(p.errors, []);
    await p.close();
  });

  test("a refused transition shows its reason and the allowed states; the hook shows its failure", async () => {
    await call(server.url, "RegisterAgent", { agentId: "refuse-1" });
    await call(server.url, "TransitionState", { agentId: "refuse-1", targetState: "ACTIVE" });
    // A blocking callback hook that no worker serves: it fails, and failure_policy fail refuses.
    const hook = await call(server.url, "RegisterHook", {
      hookName: "change-freeze",
      triggerStates: ["LIFECYCLE_STATE_PAUSED"],
      isBlocking: true,
      timeoutMs: 500,
      config: { type: "callback", callback: "freeze-gate" },
      agentIds: ["refuse-1"],
    });
    const p = await page();
    await p.goto(`${server.url}/ui/agents/refuse-1`);
    await p.getByTestId("agent-state").filter({ hasText: "ACTIVE" }).waitFor();
    await p.getByLabel("Reason").fill("try a pause");
    await p.locator('[data-target="PAUSED"]').click();
    const refusal = p.getByTestId("refusal");
    await refusal.waitFor();
    assert.match(await refusal.textContent(), /Refused/);
    assert.match(await p.getByTestId("refusal-reason").textContent(), /HOOK_FAILED/);
    assert.match(await refusal.textContent(), /change-freeze/);
    const allowed = (await p.getByTestId("refusal-allowed").textContent()).split(", ");
    assert.ok(allowed.includes("PAUSED") && allowed.includes("MAINTENANCE"), `allowed: ${allowed}`);
    assert.equal(await p.getByTestId("agent-state").textContent(), "ACTIVE");
    // The hooks view: its filters, blocking, failure policy and the failure counted.
    await p.getByRole("link", { name: "Hooks" }).click();
    const row = p.locator("tr", { hasText: "change-freeze" });
    await row.waitFor();
    const text = await row.textContent();
    assert.match(text, /PAUSED/);
    assert.match(text, /yes/);
    assert.match(text, /fail/);
    await eventually(async () => /failed in/.test(await row.textContent()), 8000, "the hook's last outcome");
    await call(server.url, "UnregisterHook", { hookId: hook.hookId });
    assert.deepEqual(p.errors, []);
    await p.close();
  });
});

describe("a larger fleet", () => {
  let server;
  before(async () => {
    server = await startServer();
    const ids = Array.from({ length: 300 }, (_, i) => `k-${String(i).padStart(3, "0")}`);
    for (let i = 0; i < ids.length; i += 20) await Promise.all(ids.slice(i, i + 20).map((agentId) => call(server.url, "RegisterAgent", { agentId })));
  });
  after(async () => {
    await server?.stop();
  });

  test("the virtualized table renders only the rows on screen and is driven by the keyboard", async () => {
    const p = await page();
    await p.goto(`${server.url}/ui/`);
    await p.getByTestId("count-INITIALIZED").filter({ hasText: "300" }).waitFor();
    const rendered = await p.locator("[data-agent]").count();
    assert.ok(rendered > 10 && rendered < 100, `${rendered} rows in the DOM for 300 agents`);
    // The grid keeps the focus and points at its active row.
    const active = () =>
      p.evaluate(() => {
        const grid = document.activeElement;
        const id = grid?.getAttribute("aria-activedescendant");
        return id ? (document.getElementById(id)?.dataset.agent ?? "") : "";
      });
    await p.getByRole("grid", { name: /Agents/ }).focus();
    await p.keyboard.press("ArrowDown");
    await eventually(async () => (await active()) === "k-000", 5000, "ArrowDown to the first agent");
    await p.keyboard.press("End");
    await eventually(async () => (await active()) === "k-299", 5000, "End to the last agent");
    assert.ok(await p.locator('[data-agent="k-299"]').isVisible());
    await p.keyboard.press("Home");
    await eventually(async () => (await active()) === "k-000", 5000, "Home to the first agent");
    for (let i = 0; i < 3; i++) await p.keyboard.press("ArrowDown");
    await eventually(async () => (await active()) === "k-003", 5000, "ArrowDown").catch(async (e) => {
      throw new Error(`${e.message}: active ${await active()}`);
    });
    await p.keyboard.press("PageDown");
    await eventually(async () => Number((await active()).slice(2)) > 10, 5000, "PageDown");
    await p.keyboard.press("Home");
    for (let i = 0; i < 3; i++) await p.keyboard.press("ArrowDown");
    await eventually(async () => (await active()) === "k-003", 5000, "back to k-003");
    await p.keyboard.press("Enter");
    await p.locator("h1", { hasText: "k-003" }).waitFor();
    assert.deepEqual(p.errors, []);
    await p.close();
  });
});

describe("with bearer tokens", () => {
  let server;
  let tmp;
  before(async () => {
    tmp = tempDir("hms-ui-auth-");
    server = await startServer(["--auth-tokens", writeTokens(tmp.dir), "--plugin-repo", pluginRepo(tmp.dir)]);
    await call(server.url, "RegisterAgent", { agentId: "roles-1" }, TOKENS.admin.token);
  });
  after(async () => {
    await server?.stop();
    tmp?.remove();
  });

  test("a viewer sees no controls, and a direct call with its token is refused", async () => {
    const p = await page();
    await signIn(p, server.url, TOKENS.viewer.token);
    assert.equal(await p.getByTestId("role").textContent(), "viewer");
    await stateOf(p, "roles-1").waitFor();
    assert.equal(await p.getByText("Register an agent").count(), 0);
    await p.locator('a[href="/ui/agents/roles-1"]').click();
    await p.getByTestId("agent-state").waitFor();
    await p.locator("[data-testid=timeline] li").first().waitFor();
    assert.equal(await p.locator("[data-target]").count(), 0);
    assert.equal(await p.getByLabel("Reason").count(), 0);
    assert.equal(await p.locator("button", { hasText: "Force" }).count(), 0);
    // The same call the console would make, from the page, with the viewer's token.
    const r = await p.evaluate(async (token) => {
      const res = await fetch("/hms.agent.lifecycle.v1.LifecycleManager/TransitionState", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ agentId: "roles-1", targetState: "ACTIVE" }),
      });
      return { status: res.status, body: await res.json() };
    }, TOKENS.viewer.token);
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "permission_denied");
    assert.match(r.body.message, /vera is viewer/);
    // Plugins: shown, with no operation and no scan.
    await p.getByRole("link", { name: "Plugins" }).click();
    await p.locator('[data-plugin="com.example.greeter"] [data-version="1.0.0"]').waitFor();
    assert.equal(await p.locator("[data-op]").count(), 0);
    assert.equal(await p.getByRole("button", { name: "Scan the repository" }).count(), 0);
    // A wrong token does not sign in.
    await p.getByRole("button", { name: "Sign out" }).click();
    await p.getByLabel("Bearer token").fill("not-a-token-of-this-server");
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.getByRole("alert").filter({ hasText: /UNAUTHENTICATED/ }).waitFor();
    assert.deepEqual(p.errors, []);
    await p.close();
  });

  test("an operator's transition is recorded with its principal; force is for admins", async () => {
    const p = await page();
    await signIn(p, server.url, TOKENS.operator.token);
    assert.equal(await p.getByTestId("role").textContent(), "operator");
    // Plugin operations, but deprecate (admin) is not offered.
    await p.getByRole("link", { name: "Plugins" }).click();
    const v = p.locator('[data-plugin="com.example.greeter"] [data-version="1.0.0"]');
    await v.locator('[data-op="load"]').waitFor();
    assert.equal(await p.locator('[data-op="deprecate"]').count(), 0);
    await p.goto(`${server.url}/ui/agents/roles-1`);
    await p.getByTestId("agent-state").filter({ hasText: "INITIALIZED" }).waitFor();
    assert.equal(await p.locator("button", { hasText: "Force" }).count(), 0);
    await p.getByLabel("Reason").fill("operator start");
    await p.locator('[data-target="ACTIVE"]').click();
    await p.locator("[data-testid=timeline] li", { hasText: "operator start" }).locator(".initiator", { hasText: "olga" }).waitFor();
    const h = await call(server.url, "GetTransitionHistory", { agentId: "roles-1", limit: 10 }, TOKENS.viewer.token);
    assert.equal(h.events.at(-1).initiatedBy, "olga");
    // An admin forces, behind a confirmation.
    await p.getByRole("button", { name: "Sign out" }).click();
    await signIn(p, server.url, TOKENS.admin.token);
    await p.goto(`${server.url}/ui/agents/roles-1`);
    await p.getByTestId("agent-state").filter({ hasText: "ACTIVE" }).waitFor();
    // ACTIVE -> INITIALIZED is no edge of the state machine: only force takes it.
    assert.equal(await p.locator('[data-target="INITIALIZED"]').count(), 0);
    await p.getByLabel("Force to").selectOption({ label: "INITIALIZED" });
    await p.getByRole("button", { name: "Force…" }).click();
    await p.getByRole("alertdialog").waitFor();
    await p.getByRole("button", { name: "Force it" }).click();
    await p.getByTestId("agent-state").filter({ hasText: "INITIALIZED" }).waitFor();
    const h2 = await call(server.url, "GetTransitionHistory", { agentId: "roles-1", limit: 10 }, TOKENS.viewer.token);
    assert.equal(h2.events.at(-1).initiatedBy, "ada");
    assert.equal(h2.events.at(-1).transitionType, "TRANSITION_TYPE_FORCED");
    assert.deepEqual(p.errors, []);
    await p.close();
  });
});

describe("plugins", () => {
  let server;
  let tmp;
  before(async () => {
    tmp = tempDir("hms-ui-plugins-");
    server = await startServer(["--plugin-repo", pluginRepo(tmp.dir)]);
  });
  after(async () => {
    await server?.stop();
    tmp?.remove();
  });

  test("a plugin activated from the console turns Active", async () => {
    const p = await page();
    await p.goto(`${server.url}/ui/plugins`);
    const card = p.locator('[data-plugin="com.example.greeter"]');
    await card.waitFor();
    // Its versions side by side.
    await card.locator('[data-version="1.0.0"]').waitFor();
    await card.locator('[data-version="1.1.0"]').waitFor();
    const v = card.locator('[data-version="1.1.0"]');
    // The operations offered are the server's allowed_operations: load, then activate.
    await v.getByTestId("plugin-state").filter({ hasText: "REGISTERED" }).waitFor();
    await v.locator('[data-op="load"]').click();
    await v.getByTestId("plugin-state").filter({ hasText: "INACTIVE" }).waitFor();
    await v.locator('[data-op="activate"]').click();
    await v.getByTestId("plugin-state").filter({ hasText: "ACTIVE" }).waitFor();
    const got = await call(server.url, "GetPlugin", { id: "com.example.greeter", version: "1.1.0" });
    assert.equal(got.plugin.state, "PLUGIN_STATE_ACTIVE");
    // resolve picks it; its history shows the activation by the console's principal.
    await card.getByRole("button", { name: "Resolve" }).click();
    await card.getByText("resolve picks 1.1.0").waitFor();
    await card.getByRole("button", { name: "History" }).click();
    await card.locator("ol.timeline li", { hasText: "activate" }).first().waitFor();
    assert.deepEqual(p.errors, []);
    await p.close();
  });
});

describe("restart", () => {
  test("after the server restarts, the console reconnects and misses no event", async () => {
    const tmp = tempDir("hms-ui-restart-");
    const flags = ["--store", "sqlite", "--data-dir", tmp.dir];
    let server = await startServer(flags);
    const port = server.port;
    const p = await page();
    try {
      await call(server.url, "RegisterAgent", { agentId: "r-1" });
      await p.goto(`${server.url}/ui/events`);
      await p.locator("[data-testid=connection]", { hasText: "live" }).waitFor();
      await call(server.url, "TransitionState", { agentId: "r-1", targetState: "ACTIVE", reason: "before" });
      await p.locator("[data-testid=feed] tr", { hasText: "before" }).waitFor();
      await server.stop();
      await p.locator("[data-testid=connection]", { hasText: "reconnecting" }).waitFor();
      server = await startServer([...flags, "--listen", `127.0.0.1:${port}`]);
      // Events committed at once, likely before the console is back: it must still get them.
      await call(server.url, "RegisterAgent", { agentId: "r-2" });
      await call(server.url, "TransitionState", { agentId: "r-1", targetState: "PAUSED", reason: "after-1" });
      await call(server.url, "TransitionState", { agentId: "r-2", targetState: "ACTIVE", reason: "after-2" });
      await p.locator("[data-testid=connection]", { hasText: "live" }).waitFor({ timeout: 15_000 });
      await call(server.url, "TransitionState", { agentId: "r-1", targetState: "ACTIVE", reason: "after-3" });
      await p.locator("[data-testid=feed] tr", { hasText: "after-3" }).waitFor();
      // Every stored event (those before the console opened are its feed's first), each
      // exactly once, in order.
      const all = await call(server.url, "GetTransitionHistory", { agentId: "", limit: 1000 });
      const stored = all.events.map((e) => Number(e.sequence));
      const shown = (await p.locator("[data-testid=feed] tr td:first-child").allTextContents()).map(Number).reverse();
      assert.deepEqual(shown, stored);
      await p.goto(`${server.url}/ui/`);
      await stateOf(p, "r-2").filter({ hasText: "ACTIVE" }).waitFor();
      assert.deepEqual(p.errors, []);

      // A console that had no event since it opened (it lists the agents again).
      await p.goto(`${server.url}/ui/events`);
      await p.locator("[data-testid=connection]", { hasText: "live" }).waitFor();
      await p.locator("[data-testid=feed] tr", { hasText: "after-3" }).waitFor();
      await server.stop();
      await p.locator("[data-testid=connection]", { hasText: "reconnecting" }).waitFor();
      server = await startServer([...flags, "--listen", `127.0.0.1:${port}`]);
      await call(server.url, "RegisterAgent", { agentId: "r-3" });
      await call(server.url, "TransitionState", { agentId: "r-3", targetState: "ACTIVE", reason: "while-idle" });
      await p.locator("[data-testid=connection]", { hasText: "live" }).waitFor({ timeout: 15_000 });
      await p.locator("[data-testid=feed] tr", { hasText: "while-idle" }).waitFor();
      const all2 = await call(server.url, "GetTransitionHistory", { agentId: "", limit: 1000 });
      const shown2 = (await p.locator("[data-testid=feed] tr td:first-child").allTextContents()).map(Number).reverse();
      assert.deepEqual(shown2, all2.events.map((e) => Number(e.sequence)));
      await p.getByRole("link", { name: "Fleet" }).click();
      await stateOf(p, "r-3").filter({ hasText: "ACTIVE" }).waitFor();
      assert.deepEqual(p.errors, []);
    } finally {
      await p.close();
      await server.stop();
      tmp.remove();
    }
  });
});
