// One fresh Node process's instantiation of the WebAssembly core, for bench.mjs (which
// starts several and reports the median and the maximum): the package's import, then
// ready() on a new embedded manager (read the .wasm, compile, instantiate, Go's
// initialization, hms_open), the first call, and a second manager's module instantiated
// from the compiled module the process keeps. With the argument "plugins", the same for
// the plugin service's module (manager.plugins.ready()). Prints one JSON line.
const which = process.argv[2] === "plugins" ? "plugins" : "agents";
const t0 = performance.now();
const { LifecycleManager } = await import("../dist/index.js");
const { WasmModule } = await import("../dist/wasm.js");
const t1 = performance.now();
const m = new LifecycleManager();
if (which === "plugins") await m.plugins.ready();
else await m.ready();
const t2 = performance.now();
if (which === "plugins") await m.plugins.list();
else await m.registerAgent("first");
const t3 = performance.now();
// Another instance of the same module: the compiled module is reused.
const again = await WasmModule.load(new URL(`../dist/${which === "plugins" ? "hms_lifecycle_plugins" : "hms_lifecycle"}.wasm`, import.meta.url), { plugins: which === "plugins" });
const t4 = performance.now();
await m.close();
console.log(JSON.stringify({ import: t1 - t0, ready: t2 - t1, first: t3 - t2, cached: t4 - t3, init: again.initMs }));
