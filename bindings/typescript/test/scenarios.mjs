// The shared conformance scenarios (testdata/scenarios/README.md) through the package's
// API: runs in Node and in the browser page (no Node APIs here). run(manager, scenario)
// throws an Error naming the scenario and step that failed.

const SERVICE = { agents: "hms.agent.lifecycle.v1.LifecycleManager", plugins: "hms.plugin.lifecycle.v1.PluginLifecycleManager" };

export async function runScenario(manager, sc, { log = () => {} } = {}) {
  const saved = {};
  const streams = {};
  const workers = {};
  let i = 0;
  const fail = (step, why) => {
    throw new Error(`scenario ${sc.name}, step ${i + 1} (${describe(step)}): ${why}`);
  };
  try {
    for (; i < sc.steps.length; i++) {
      const step = sc.steps[i];
      log(`${sc.name} ${i + 1}: ${describe(step)}`);
      if (step.call !== undefined) {
        const svc = SERVICE[step.service ?? "agents"];
        const method = step.call.includes("/") ? step.call : `${svc}/${step.call}`;
        let res;
        try {
          res = await manager.callJson(method, subst(step.request ?? {}, saved));
        } catch (e) {
          if (!step.expectError) fail(step, `error ${e.code ?? ""}: ${e.message}`);
          if (e.code !== step.expectError) fail(step, `error ${e.code}: ${e.message}; want ${step.expectError}`);
          if (step.expectErrorContains && !e.message.includes(step.expectErrorContains)) {
            fail(step, `error message ${JSON.stringify(e.message)} does not contain ${JSON.stringify(step.expectErrorContains)}`);
          }
          continue;
        }
        if (step.expectError) fail(step, `succeeded, want error ${step.expectError}: ${JSON.stringify(res)}`);
        if (step.expect !== undefined) {
          const why = match(subst(step.expect, saved), res, "response");
          if (why) fail(step, `${why}\n  response: ${JSON.stringify(res)}`);
        }
        for (const [name, path] of Object.entries(step.save ?? {})) {
          const v = lookup(res, path);
          if (v === undefined) fail(step, `save ${name}: no ${path} in ${JSON.stringify(res)}`);
          saved[name] = v;
        }
      } else if (step.watch !== undefined) {
        const svc = step.method === "WatchPluginEvents" ? SERVICE.plugins : SERVICE.agents;
        const it = manager.watchJson(`${svc}/${step.method}`, subst(step.request ?? {}, saved));
        await it.opened;
        streams[step.watch] = { it, pending: undefined };
      } else if (step.next !== undefined) {
        const s = streams[step.next] ?? fail(step, "no such watch");
        const deadline = Date.now() + 10_000;
        for (let k = 0; k < step.expect.length; k++) {
          const r = await take(s, deadline - Date.now());
          if (r === TIMEOUT) fail(step, `item ${k + 1} of ${step.expect.length} did not come within 10 s`);
          if (r.error) fail(step, `the stream ended: ${r.error.code}: ${r.error.message}`);
          if (r.done) fail(step, "the stream ended");
          const why = match(subst(step.expect[k], saved), r.value, `item ${k + 1}`);
          if (why) fail(step, `${why}\n  item: ${JSON.stringify(r.value)}`);
        }
        if (step.thenNothingFor) {
          const r = await take(s, step.thenNothingFor);
          if (r !== TIMEOUT && !r.error && !r.done) fail(step, `an unexpected item: ${JSON.stringify(r.value)}`);
        }
      } else if (step.end !== undefined) {
        const s = streams[step.end] ?? fail(step, "no such watch");
        const deadline = Date.now() + 10_000;
        for (;;) {
          const r = await take(s, deadline - Date.now());
          if (r === TIMEOUT) fail(step, "the stream did not end within 10 s");
          if (r.done) fail(step, `the stream ended without an error, want ${step.expectError}`);
          if (r.error) {
            if (r.error.code !== step.expectError) fail(step, `ended with ${r.error.code}: ${r.error.message}; want ${step.expectError}`);
            break;
          }
        }
      } else if (step.closeWatch !== undefined) {
        const s = streams[step.closeWatch] ?? fail(step, "no such watch");
        await s.it.return();
        delete streams[step.closeWatch];
      } else if (step.hooks !== undefined) {
        const w = { count: 0, names: step.callbacks };
        const answer = step.answer;
        const reason = step.reason ?? "";
        for (const name of step.callbacks) {
          await manager.handleCallback(name, () => {
            w.count++;
            switch (answer) {
              case "allow":
                return true;
              case "veto":
                return { veto: true, reason };
              case "error":
                throw new Error(reason);
              case "ignore":
                return new Promise(() => {});
              default:
                throw new Error(`unknown answer ${answer}`);
            }
          });
        }
        workers[step.hooks] = w;
      } else if (step.invocations !== undefined) {
        const w = workers[step.invocations] ?? fail(step, "no such hook worker");
        if (w.count !== step.expect) fail(step, `${w.count} invocations, want ${step.expect}`);
      } else if (step.closeHooks !== undefined) {
        const w = workers[step.closeHooks] ?? fail(step, "no such hook worker");
        for (const name of w.names) await manager.removeCallback(name);
        delete workers[step.closeHooks];
      } else {
        fail(step, "unknown step");
      }
    }
  } finally {
    for (const s of Object.values(streams)) await s.it.return();
    for (const w of Object.values(workers)) for (const name of w.names) await manager.removeCallback(name);
  }
}

const TIMEOUT = Symbol("timeout");

/** The stream's next item within ms: {value} | {done} | {error} | TIMEOUT. A pending read
 * is kept for the next take, so no item is lost to a timeout. */
async function take(s, ms) {
  s.pending ??= s.it.next().then(
    (r) => (r.done ? { done: true } : { value: r.value }),
    (error) => ({ error }),
  );
  let timer;
  const r = await Promise.race([s.pending, new Promise((res) => (timer = setTimeout(() => res(TIMEOUT), Math.max(0, ms))))]);
  clearTimeout(timer);
  if (r !== TIMEOUT) s.pending = undefined;
  return r;
}

function describe(step) {
  for (const k of ["call", "watch", "next", "end", "closeWatch", "hooks", "invocations", "closeHooks"]) {
    if (step[k] !== undefined) return `${k} ${step[k]}`;
  }
  return "?";
}

function subst(v, saved) {
  if (typeof v === "string") {
    const m = /^\$\{([^}]+)\}$/.exec(v);
    if (m) return saved[m[1]] ?? v;
    return v.replace(/\$\{([^}]+)\}/g, (_, n) => String(saved[n] ?? ""));
  }
  if (Array.isArray(v)) return v.map((x) => subst(x, saved));
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x, saved)]));
  return v;
}

function lookup(v, path) {
  for (const p of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = Array.isArray(v) ? v[Number(p)] : v[p];
  }
  return v;
}

function isZero(v) {
  if (v === null || v === undefined || v === false || v === 0) return true;
  if (typeof v === "string") return v === "" || v === "0" || v.endsWith("_UNSPECIFIED");
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && "$len" in v) return String(v.$len) === "0";
    return keys.length === 0;
  }
  return false;
}

/** Why got does not match want ("" when it does), by the README's rules. */
export function match(want, got, path) {
  if (want !== null && typeof want === "object" && !Array.isArray(want)) {
    const keys = Object.keys(want);
    if (keys.length === 1 && "$contains" in want) {
      const s = typeof got === "string" ? got : "";
      return s.includes(String(want.$contains)) ? "" : `${path}: ${JSON.stringify(s)} does not contain ${JSON.stringify(want.$contains)}`;
    }
    if (keys.length === 1 && "$len" in want) {
      const n = Array.isArray(got) ? got.length : 0;
      return String(n) === String(want.$len) ? "" : `${path}: ${n} elements, want ${want.$len}`;
    }
    const g = got !== null && typeof got === "object" ? got : {};
    for (const k of keys) {
      if (!(k in g)) {
        if (isZero(want[k])) continue;
        return `${path}.${k}: absent, want ${JSON.stringify(want[k])}`;
      }
      const why = match(want[k], g[k], `${path}.${k}`);
      if (why) return why;
    }
    return "";
  }
  if (Array.isArray(want)) {
    const g = Array.isArray(got) ? got : [];
    if (g.length !== want.length) return `${path}: ${g.length} elements, want ${want.length}`;
    for (let k = 0; k < want.length; k++) {
      const why = match(want[k], g[k], `${path}[${k}]`);
      if (why) return why;
    }
    return "";
  }
  if (String(want) === String(got) || want === got) return "";
  if (got === undefined && isZero(want)) return "";
  return `${path}: ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
}
