// The TypeScript binding's figures, in one Node run: instantiation of the WebAssembly core
// (in fresh processes: bench/instantiate.mjs),
// transitionState and getState on it and over Connect (and gRPC) to a local server, watch
// events/s into LifecycleEvent objects, and the .wasm size raw and gzipped. The Go figure for
// the same calls comes from `go test -bench 'GetState|TransitionState' ./ffi` (make
// bench-typescript runs both).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { LifecycleManager, LifecycleState } from "../dist/index.js";
import { PKG, startServer } from "../test/helpers.mjs";

const N = Number(process.env.HMS_BENCH_N ?? 20000);

function report(name, n, ms) {
  const us = (ms * 1000) / n;
  console.log(`${name.padEnd(44)} ${String(n).padStart(7)} ops  ${us.toFixed(2).padStart(9)} µs/op  ${Math.round((n * 1000) / ms).toLocaleString("en").padStart(10)} ops/s`);
  return us;
}

let agents = 0;
async function calls(label, m, n) {
  const a1 = `bench-${++agents}`;
  const a2 = `bench-${++agents}`;
  await m.registerAgent(a1);
  await m.registerAgent(a2);
  // Warm up (V8 compiles WebAssembly with a baseline compiler first, optimizing later).
  const until = performance.now() + Number(process.env.HMS_BENCH_WARMUP_MS ?? 3000);
  for (let i = 0; performance.now() < until; i++) {
    await m.getState(a1);
    await m.transitionState({ agentId: a2, targetState: i % 2 === 0 ? LifecycleState.Active : LifecycleState.Paused });
  }
  let t = performance.now();
  for (let i = 0; i < n; i++) await m.getState(a1);
  const get = report(`${label} getState`, n, performance.now() - t);
  const state = (await m.getState(a2)).state;
  t = performance.now();
  for (let i = 0; i < n; i++) {
    const target = (i % 2 === 0) === (state === LifecycleState.Active) ? LifecycleState.Paused : LifecycleState.Active;
    const r = await m.transitionState({ agentId: a2, targetState: target });
    if (!r.success) throw new Error(r.errorMessage);
  }
  const tr = report(`${label} transitionState`, n, performance.now() - t);
  return { get, tr };
}

const wasm = readFileSync(join(PKG, "dist", "hms_lifecycle.wasm"));
console.log(`hms_lifecycle.wasm: ${wasm.length.toLocaleString("en")} bytes raw, ${gzipSync(wasm, { level: 9 }).length.toLocaleString("en")} bytes gzipped (-9)`);

// Instantiation, in fresh Node processes (the first instantiation is the one a program
// pays): N of them, one after another, each timing the package's import, ready() on an
// embedded manager (read the .wasm, compile, instantiate, Go's initialization, hms_open),
// the first call, and another instance from the module it compiled already. The same for
// the plugin service's module. Median and maximum; the load average says how busy the
// machine was.
function fresh(which, n) {
  const runs = [];
  for (let i = 0; i < n; i++) {
    const out = execFileSync(process.execPath, [join(PKG, "bench", "instantiate.mjs"), which], { encoding: "utf8" });
    runs.push(JSON.parse(out.trim().split("\n").pop()));
  }
  const stat = (k) => {
    const v = runs.map((r) => r[k]).sort((a, b) => a - b);
    const mid = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    return `median ${mid.toFixed(0)} ms, max ${v[v.length - 1].toFixed(0)} ms`;
  };
  console.log(`instantiation of ${which === "plugins" ? "hms_lifecycle_plugins.wasm (plugins.ready())" : "hms_lifecycle.wasm (ready())"}, ${n} fresh processes: ${stat("ready")}`);
  console.log(`  (all runs, ms: ${runs.map((r) => r.ready.toFixed(0)).join(", ")}; load average before: ${loadBefore})`);
  console.log(`  first call after it: ${stat("first")}; importing the package: ${stat("import")}; another instance from the compiled module: ${stat("cached")}`);
}
const loadBefore = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
fresh("agents", Number(process.env.HMS_BENCH_PROCS ?? 10));
const pluginsWasm = readFileSync(join(PKG, "dist", "hms_lifecycle_plugins.wasm"));
console.log(`hms_lifecycle_plugins.wasm: ${pluginsWasm.length.toLocaleString("en")} bytes raw, ${gzipSync(pluginsWasm, { level: 9 }).length.toLocaleString("en")} bytes gzipped (-9)`);
fresh("plugins", Math.max(3, Math.round(Number(process.env.HMS_BENCH_PROCS ?? 10) / 2)));

const embedded = new LifecycleManager();
const e = await calls("embedded (WebAssembly)", embedded, N);

// Watch throughput: stored events replayed from a sequence (the watcher reads the store,
// Go encodes, the host pulls batches and decodes them into LifecycleEvent objects). Two
// rounds warm up (V8 tiers the module up), five count.
{
  const m = embedded;
  await m.registerAgent("bench-w");
  const events = 5000;
  let total = 0;
  let ms = 0;
  for (let round = 0; round < 7; round++) {
    const head = (await m.getState("bench-w")).lastSequence;
    for (let i = 0; i < events; i++) await m.transitionState({ agentId: "bench-w", targetState: i % 2 === 0 ? LifecycleState.Active : LifecycleState.Paused });
    const t = performance.now();
    let n = 0;
    for await (const ev of m.watchEvents("bench-w", undefined, undefined, { fromSequence: head + 1 })) {
      if (ev.timestamp.getTime() === 0) throw new Error("no timestamp");
      if (++n === events) break;
    }
    if (round >= 2) {
      ms += performance.now() - t;
      total += n;
    }
  }
  report("embedded watch (replay) → LifecycleEvent", total, ms);
  console.log(`  = ${Math.round((total * 1000) / ms).toLocaleString("en")} events/s`);
}
await embedded.close();

const srv = await startServer();
try {
  const connect = new LifecycleManager({ endpoint: srv.url });
  const c = await calls("remote Connect (HTTP/2, loopback)", connect, Math.min(N, 5000));
  await connect.close();
  const grpc = new LifecycleManager({ endpoint: srv.url, transport: "grpc" });
  await calls("remote gRPC (loopback)", grpc, Math.min(N, 5000));
  await grpc.close();
  console.log(`in-process vs Connect: getState ${(c.get / e.get).toFixed(1)}× faster, transitionState ${(c.tr / e.tr).toFixed(1)}× faster`);
} finally {
  await srv.stop();
}
