// The API beyond the scenarios, embedded and remote: the specification's enums and
// defaults, errors by code, hooks vetoing from JavaScript (sync and async), watch resume and
// cancellation (AbortSignal, break, return()), history paging, agents, heartbeats.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { LifecycleManager, LifecycleState, TransitionType, LifecycleError, Veto, RefusalReason } from "hms-agent-lifecycle";
import { startServer } from "./helpers.mjs";

test("the specification's enums: names and values", () => {
  assert.equal(LifecycleState.Active, 2);
  assert.equal(LifecycleState[LifecycleState.ShuttingDown], "ShuttingDown");
  assert.equal(LifecycleState.Recovering, 10);
  assert.equal(TransitionType.ErrorTriggered, 4);
  assert.equal(TransitionType.Maintenance, 5);
});

const modes = {
  embedded: async () => ({ manager: new LifecycleManager(), stop: async () => {} }),
  "remote (connect)": async () => {
    const srv = await startServer();
    return { manager: new LifecycleManager({ endpoint: srv.url }), stop: srv.stop };
  },
  "remote (grpc)": async () => {
    const srv = await startServer();
    return { manager: new LifecycleManager({ endpoint: srv.url, transport: "grpc" }), stop: srv.stop };
  },
};

for (const [mode, make] of Object.entries(modes)) {
  describe(mode, () => {
    let env;
    let m;
    before(async () => {
      env = await make();
      m = env.manager;
    });
    after(async () => {
      await m.close();
      await env.stop();
    });

    test("transitions, refusals as answers, errors by code", async () => {
      const reg = await m.registerAgent("a-1", { labels: { team: "x" }, metadata: { k: "v" } });
      assert.equal(reg.agent.state, LifecycleState.Initialized);
      const st = await m.getState("a-1", true);
      assert.equal(st.state, LifecycleState.Initialized);
      assert.deepEqual(st.labels, { team: "x" });
      assert.ok(st.lastTransition instanceof Date);
      const ok = await m.transitionState({ agentId: "a-1", targetState: LifecycleState.Active, reason: "go" });
      assert.equal(ok.success, true);
      assert.equal(ok.previousState, LifecycleState.Initialized);
      assert.equal(ok.currentState, LifecycleState.Active);
      assert.ok(ok.event.timestamp instanceof Date);
      assert.equal(ok.event.transitionType, TransitionType.Normal);
      const no = await m.transitionState({ agentId: "a-1", targetState: LifecycleState.Initialized });
      assert.equal(no.success, false);
      assert.equal(no.refusalReason, RefusalReason.INVALID_TRANSITION);
      assert.match(no.errorMessage, /ACTIVE/);
      await assert.rejects(m.getState("nobody"), (e) => e instanceof LifecycleError && e.code === "NOT_FOUND" && e.grpcCode === 5);
      await assert.rejects(m.registerAgent("a-1"), { code: "ALREADY_EXISTS" });
      await assert.rejects(m.transitionState({ agentId: "", targetState: LifecycleState.Active }), { code: "INVALID_ARGUMENT" });
    });

    test("hooks vetoing from JavaScript, sync and async", async () => {
      await m.registerAgent("h-1");
      const seen = [];
      await m.handleCallback("freeze", (inv) => {
        seen.push(inv);
        return new Veto("change freeze");
      });
      const r = await m.registerHook("freeze", [LifecycleState.Active], [], true, 5000, { callback: "freeze" }, ["h-1"]);
      assert.equal(r.success, true);
      const res = await m.transitionState({ agentId: "h-1", targetState: LifecycleState.Active });
      assert.equal(res.success, false);
      assert.equal(res.refusalReason, RefusalReason.HOOK_VETOED);
      assert.match(res.errorMessage, /change freeze/);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].event.newState, LifecycleState.Active);
      assert.equal(seen[0].blocking, true);
      await m.removeCallback("freeze");
      // An async hook that allows after a while, then one that throws (failure policy fail).
      await m.handleCallback("freeze", async () => {
        await new Promise((r) => setTimeout(r, 50));
        return true;
      });
      const ok = await m.transitionState({ agentId: "h-1", targetState: LifecycleState.Active });
      assert.equal(ok.success, true, ok.errorMessage);
      await m.removeCallback("freeze");
      await m.handleCallback("freeze", () => {
        throw new Error("policy service down");
      });
      const failed = await m.transitionState({ agentId: "h-1", targetState: LifecycleState.Paused });
      assert.equal(failed.success, true, "PAUSED is not a trigger state");
      const f2 = await m.transitionState({ agentId: "h-1", targetState: LifecycleState.Active });
      assert.equal(f2.success, false);
      assert.equal(f2.refusalReason, RefusalReason.HOOK_FAILED);
      assert.match(f2.errorMessage, /policy service down/);
      await m.removeCallback("freeze");
      const hooks = await m.listHooks();
      const h = hooks.find((x) => x.hookId === r.hookId);
      assert.equal(h.vetoed, 1);
      // The latest outcome (the failure), with its message and latency.
      assert.equal(h.lastOutcome?.result, "FAILED");
      assert.match(h.lastOutcome.message, /policy service down/);
      assert.equal(typeof h.lastOutcome.latencyUs, "number");
      assert.equal(typeof h.workerConnected, "boolean");
      await m.unregisterHook(r.hookId);
      await assert.rejects(m.unregisterHook(r.hookId), { code: "NOT_FOUND" });
    });

    test("non-blocking hooks are delivered after the commit", async () => {
      await m.registerAgent("nb-1");
      const got = [];
      let done;
      const all = new Promise((r) => (done = r));
      await m.handleCallback("audit", (inv) => {
        got.push(inv.event.newState);
        if (got.length === 2) done();
      });
      await m.registerHook("audit", [], [], false, 2000, { callback: "audit" }, ["nb-1"]);
      await m.transitionState({ agentId: "nb-1", targetState: LifecycleState.Active });
      await m.transitionState({ agentId: "nb-1", targetState: LifecycleState.Paused });
      await all;
      assert.deepEqual(got, [LifecycleState.Active, LifecycleState.Paused]);
      await m.removeCallback("audit");
    });

    test("watch: resume from a sequence, no gap, no duplicate; break and AbortSignal end it", async () => {
      const reg = await m.registerAgent("w-1");
      const start = reg.event.sequence;
      for (const s of [LifecycleState.Active, LifecycleState.Paused, LifecycleState.Active]) {
        await m.transitionState({ agentId: "w-1", targetState: s });
      }
      const seqs = [];
      for await (const ev of m.watchEvents("w-1", undefined, undefined, { fromSequence: start })) {
        seqs.push(ev.sequence);
        if (seqs.length === 4) break; // return(): closes the stream
      }
      assert.equal(seqs[0], start);
      assert.equal(new Set(seqs).size, 4);
      // Resume after the second event: the third and fourth again, then a live one.
      const it = m.watchEvents("w-1", undefined, undefined, { fromSequence: seqs[2] });
      assert.equal((await it.next()).value.sequence, seqs[2]);
      assert.equal((await it.next()).value.sequence, seqs[3]);
      const live = it.next();
      await m.transitionState({ agentId: "w-1", targetState: LifecycleState.Paused });
      const ev = (await live).value;
      assert.ok(ev.sequence > seqs[3]);
      assert.equal(ev.newState, LifecycleState.Paused);
      await it.return();
      assert.deepEqual(await it.next(), { value: undefined, done: true });
      // AbortSignal: a waiting for-await loop ends.
      const ac = new AbortController();
      const events = [];
      const loop = (async () => {
        for await (const e of m.watchEvents("w-1", [LifecycleState.Error], undefined, { signal: ac.signal })) events.push(e);
      })();
      setTimeout(() => ac.abort(), 100);
      await loop;
      assert.equal(events.length, 0);
    });

    test("watch filters by state and type", async () => {
      await m.registerAgent("f-1");
      const it = m.watchEvents("f-1", [LifecycleState.Error, LifecycleState.Terminated], [TransitionType.ErrorTriggered]);
      await it.opened;
      await m.transitionState({ agentId: "f-1", targetState: LifecycleState.Active });
      await m.transitionState({ agentId: "f-1", targetState: LifecycleState.Error, reason: "boom" });
      const ev = (await it.next()).value;
      assert.equal(ev.newState, LifecycleState.Error);
      assert.equal(ev.transitionType, TransitionType.ErrorTriggered);
      assert.equal(ev.reason, "boom");
      await it.return();
    });

    test("history: the first page, and every page", async () => {
      await m.registerAgent("p-1");
      for (let i = 0; i < 12; i++) {
        await m.transitionState({ agentId: "p-1", targetState: i % 2 === 0 ? LifecycleState.Active : LifecycleState.Paused });
      }
      const first = await m.getTransitionHistory("p-1");
      assert.equal(first.length, 10);
      assert.equal(first[0].newState, LifecycleState.Initialized);
      const all = [];
      for await (const e of m.iterateHistory("p-1", { pageSize: 5 })) all.push(e.sequence);
      assert.equal(all.length, 13);
      assert.deepEqual([...all].sort((a, b) => a - b), all);
      const forced = await m.getTransitionHistory("p-1", 10, TransitionType.Forced);
      assert.equal(forced.length, 0);
    });

    test("agents, heartbeats, supervision", async () => {
      await m.registerAgent("l-1", { labels: { pool: "blue" } });
      await m.registerAgent("l-2", { labels: { pool: "blue" } });
      const blue = [];
      for await (const a of m.iterateAgents({ labelSelector: { pool: "blue" }, pageSize: 1 })) blue.push(a.agentId);
      assert.deepEqual(blue, ["l-1", "l-2"]);
      assert.deepEqual(await m.heartbeat("l-1", ["nope"]), ["nope"]);
      const sup = await m.setSupervisionPolicy("l-1", { maxRecoveries: 2, heartbeatTimeoutMs: 60000 });
      assert.equal(sup.policy.maxRecoveries, 2);
    });

    test("deleteAgent: a terminated agent only; the history stays; the id is never used again", async () => {
      await m.registerAgent("d-1");
      await assert.rejects(m.deleteAgent("d-1"), { code: "FAILED_PRECONDITION" });
      await m.transitionState({ agentId: "d-1", targetState: LifecycleState.Terminated });
      const ev = await m.deleteAgent("d-1", "decommissioned");
      assert.equal(ev.newState, LifecycleState.Unspecified);
      assert.equal(ev.reason, "decommissioned");
      await assert.rejects(m.getState("d-1"), { code: "NOT_FOUND" });
      await assert.rejects(m.registerAgent("d-1"), { code: "ALREADY_EXISTS" });
      assert.equal((await m.getTransitionHistory("d-1", 10)).length, 3);
    });

    test("an aborted signal rejects a call", async () => {
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(m.getState("l-1", false).then(() => m.transitionState({ agentId: "l-1", targetState: 2 }, { signal: ac.signal })), { code: "CANCELED" });
    });
  });
}

test("embedded: a closed manager ends its watches with UNAVAILABLE or ends them", async () => {
  const m = new LifecycleManager();
  await m.registerAgent("c-1");
  const it = m.watchEvents();
  await it.opened;
  const p = it.next();
  await m.close();
  const r = await p.then(
    (x) => x,
    (e) => e,
  );
  assert.ok(r.done === true || r.code === "UNAVAILABLE" || r.code === "CANCELED", String(r));
  await assert.rejects(m.getState("c-1"), { code: "UNAVAILABLE" });
});
