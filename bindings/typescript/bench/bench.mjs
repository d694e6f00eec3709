// The TypeScript binding's figures, in one Node run: instantiation of the WebAssembly core,
// transitionState and getState on it and over Connect (and gRPC) to a local server, watch
// events/s into LifecycleEvent objects, and the .wasm size raw and gzipped. The Go figure for
// the same calls comes from `go test -bench 'GetState|TransitionState' ./ffi` (make
// bench-typescript runs both).
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

// Instantiation: compile + instantiate + Go's initialization, in a fresh module each time.
const { WasmModule } = await import("../dist/wasm.js");
const inits = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  await WasmModule.load(wasm);
  inits.push(performance.now() - t0);
}
const compiled = await WebAssembly.compile(wasm);
const t1 = performance.now();
await WasmModule.load(compiled);
const instOnly = performance.now() - t1;
console.log(`instantiation (compile+instantiate+init), 3 runs: ${inits.map((x) => x.toFixed(0)).join(", ")} ms; from a compiled module: ${instOnly.toFixed(0)} ms`);

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
