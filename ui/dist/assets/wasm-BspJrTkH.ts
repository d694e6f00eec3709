// The in-process core: the Go lifecycle core compiled to WebAssembly (wasm/ in the
// repository), driven through its exports. See wasm/main.go for the module's side.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethodServerStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { Core, Cursor, HookServer, InvocationHandler } from "./core.js";
import { LifecycleError, canceled } from "./errors.js";
import {
  HookInvocationSchema,
  HookWorkerHelloSchema,
  HookWorkerReplySchema,
} from "./gen/hms/agent/lifecycle/v1/lifecycle_manager_pb.js";
import { instantiateWasi, type WasmSource } from "./platform.js";

/** The module interface version this binding speaks (hms_abi_version). */
const ABI_VERSION = 2;

/** The modules: the agent service alone (fast to instantiate), and the one with the plugin
 * service too (package plugin's dependencies make its initialization slower), loaded when
 * the plugin service is first used. */
const CORE_FILE = "hms_lifecycle.wasm";
const PLUGINS_FILE = "hms_lifecycle_plugins.wasm";
/** Where the plugins module sees the plugin repository (a WASI preopen). */
export const PLUGIN_ROOT = "/plugins";

/** Which module to load, and the plugin repository (a host directory) it preopens. */
export interface LoadOptions {
  plugins?: boolean;
  repository?: string | undefined;
}
const PENDING = -1;

interface Exports {
  memory: WebAssembly.Memory;
  hms_abi_version(): number;
  hms_result(): number;
  hms_alloc(n: number): number;
  hms_free(p: number): void;
  hms_handle_count(): number;
  hms_features(): number;
  hms_open(p: number, n: number): number;
  hms_close(h: bigint): number;
  hms_call(h: bigint, mp: number, mn: number, rp: number, rn: number): number;
  hms_completed(): bigint;
  hms_call_result(id: bigint): number;
  hms_pump(us: number): number;
  hms_watch(h: bigint, mp: number, mn: number, rp: number, rn: number): number;
  hms_next(s: bigint, max: number): number;
  hms_stream_close(s: bigint): number;
  hms_hooks_open(h: bigint, p: number, n: number): number;
  hms_hook_complete(w: bigint, p: number, n: number): number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A stream or hook worker of the module, drained by the pump. */
interface Drainable {
  /** Called by the pump; returns true while it wants more pumping. */
  drain(): void;
  readonly wanting: boolean;
}

/**
 * One instance of the module (shared by every embedded manager of the page or process),
 * with the pump: while a call waits for the host, a stream's reader waits, or a hook worker
 * is open, a timer calls hms_pump so that goroutines (timers, watch delivery, hook
 * invocations, supervision deadlines) make progress; with nothing waiting it stops.
 */
export class WasmModule {
  private readonly x: Exports;
  private u8: Uint8Array;
  private dv: DataView;
  private readonly res: number;
  private scratch = 0;
  private scratchCap = 0;
  private readonly methodNames = new Map<string, Uint8Array>();
  private readonly pending = new Map<bigint, { resolve: (b: Uint8Array) => void; reject: (e: unknown) => void }>();
  readonly drainables = new Set<Drainable>();
  readonly workers = new Set<Drainable>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate = false;
  private idleDelay = 0;
  /** Milliseconds the instantiation took (compile, instantiate, Go's initialization). */
  readonly initMs: number;

  private constructor(x: Exports, initMs: number) {
    this.x = x;
    this.initMs = initMs;
    this.u8 = new Uint8Array(x.memory.buffer);
    this.dv = new DataView(x.memory.buffer);
    this.res = x.hms_result();
  }

  /** Instances shared by every manager of the process or page: by module, source and
   * plugin repository. */
  private static readonly shared = new Map<string, Promise<WasmModule>>();

  /** A shared instance, instantiated on first use (compiled once per process); given a
   * module's bytes or a compiled module, a fresh instance. */
  static load(source?: WasmSource, opts: LoadOptions = {}): Promise<WasmModule> {
    const fresh = source !== undefined && typeof source !== "string" && !(source instanceof URL);
    if (fresh) return WasmModule.instantiate(source, opts);
    const key = `${opts.plugins ? PLUGINS_FILE : CORE_FILE}\0${String(source ?? "")}\0${opts.repository ?? ""}`;
    let p = WasmModule.shared.get(key);
    if (p === undefined) {
      p = WasmModule.instantiate(source, opts);
      WasmModule.shared.set(key, p);
      p.catch(() => WasmModule.shared.delete(key));
    }
    return p;
  }

  private static async instantiate(source: WasmSource | undefined, opts: LoadOptions): Promise<WasmModule> {
    const t0 = performance.now();
    const file = opts.plugins ? PLUGINS_FILE : CORE_FILE;
    const inst = await instantiateWasi(source, file, opts.repository !== undefined ? { [PLUGIN_ROOT]: opts.repository } : undefined);
    const x = inst.exports as unknown as Exports;
    const v = x.hms_abi_version();
    if (v !== ABI_VERSION) {
      throw new LifecycleError(9, `the WebAssembly module speaks interface version ${v}, this binding ${ABI_VERSION}: rebuild the package`);
    }
    if (opts.plugins && (x.hms_features() & 1) === 0) {
      throw new LifecycleError(9, `the WebAssembly module for the plugin service (${file}) is built without it: build it with -tags hms_plugins`);
    }
    return new WasmModule(x, performance.now() - t0);
  }

  /** Memory views are renewed after every export call: growing the memory detaches them. */
  private views(): void {
    if (this.u8.buffer !== this.x.memory.buffer) {
      this.u8 = new Uint8Array(this.x.memory.buffer);
      this.dv = new DataView(this.x.memory.buffer);
    }
  }

  /** Writes a and b into the scratch buffer; returns their addresses. */
  private put(a: Uint8Array, b: Uint8Array): [number, number] {
    const n = a.length + b.length;
    if (n > this.scratchCap) {
      if (this.scratch !== 0) this.x.hms_free(this.scratch);
      this.scratchCap = Math.max(n, this.scratchCap * 2, 4096);
      this.scratch = this.x.hms_alloc(this.scratchCap);
    }
    this.views();
    this.u8.set(a, this.scratch);
    this.u8.set(b, this.scratch + a.length);
    return [this.scratch, this.scratch + a.length];
  }

  private method(name: string): Uint8Array {
    let b = this.methodNames.get(name);
    if (b === undefined) {
      b = encoder.encode(name);
      this.methodNames.set(name, b);
    }
    return b;
  }

  /** The error of the last export call (its code is not 0 and not pending). */
  private error(code: number): LifecycleError {
    const p = this.dv.getUint32(this.res + 12, true);
    const n = this.dv.getUint32(this.res + 16, true);
    const msg = decoder.decode(this.u8.subarray(p, p + n));
    const resume = Number(this.dv.getBigUint64(this.res + 24, true));
    return new LifecycleError(code, msg, resume);
  }

  /** The data of the last export call, copied out. */
  private data(): Uint8Array {
    const p = this.dv.getUint32(this.res + 4, true);
    const n = this.dv.getUint32(this.res + 8, true);
    return this.u8.slice(p, p + n);
  }

  private value(): bigint {
    return this.dv.getBigUint64(this.res + 32, true);
  }

  /** Checks an export's status: returns normally on 0, throws the error otherwise. */
  private check(code: number): void {
    this.views();
    if (code !== 0) throw this.error(code);
  }

  open(config: object): bigint {
    const cfg = encoder.encode(JSON.stringify(config));
    const [p] = this.put(cfg, new Uint8Array(0));
    this.check(this.x.hms_open(p, cfg.length));
    return this.value();
  }

  closeHandle(h: bigint): void {
    this.check(this.x.hms_close(h));
  }

  /** Calls a unary RPC; resolves with the response's bytes. */
  call(h: bigint, method: string, req: Uint8Array): Promise<Uint8Array> | Uint8Array {
    const [mp, rp] = this.put(this.method(method), req);
    const code = this.x.hms_call(h, mp, this.method(method).length, rp, req.length);
    this.views();
    if (code === 0) return this.data();
    if (code !== PENDING) throw this.error(code);
    const id = this.value();
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.wake();
    });
  }

  openWatch(h: bigint, method: string, req: Uint8Array): bigint {
    const [mp, rp] = this.put(this.method(method), req);
    this.check(this.x.hms_watch(h, mp, this.method(method).length, rp, req.length));
    return this.value();
  }

  openHooks(h: bigint, hello: Uint8Array): bigint {
    const [p] = this.put(hello, new Uint8Array(0));
    this.check(this.x.hms_hooks_open(h, p, hello.length));
    return this.value();
  }

  /** Takes up to max waiting items of a stream without waiting (an empty array: none);
   * throws the stream's end. */
  next(s: bigint, max: number): Uint8Array[] {
    this.check(this.x.hms_next(s, max));
    const p = this.dv.getUint32(this.res + 4, true);
    const n = this.dv.getUint32(this.res + 8, true);
    const items: Uint8Array[] = [];
    let off = p;
    const end = p + n;
    while (off < end) {
      const len = this.dv.getUint32(off, true);
      items.push(this.u8.slice(off + 4, off + 4 + len));
      off += 4 + len;
    }
    return items;
  }

  complete(w: bigint, reply: Uint8Array): void {
    const [p] = this.put(reply, new Uint8Array(0));
    this.check(this.x.hms_hook_complete(w, p, reply.length));
  }

  closeStream(s: bigint): void {
    this.check(this.x.hms_stream_close(s));
  }

  handleCount(): number {
    return this.x.hms_handle_count();
  }

  /** Something waits: make sure the pump runs soon. */
  wake(): void {
    this.idleDelay = 0;
    this.schedule(true);
  }

  private active(): boolean {
    if (this.pending.size > 0 || this.workers.size > 0) return true;
    for (const d of this.drainables) if (d.wanting) return true;
    return false;
  }

  private schedule(now: boolean): void {
    if (this.immediate || (this.timer !== undefined && !now)) return;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (now) {
      this.immediate = true;
      queueTask(this.tick);
      return;
    }
    this.timer = setTimeout(this.tick, this.idleDelay);
    // Hook workers alone do not keep a Node process alive; calls and readers do.
    const onlyWorkers = this.pending.size === 0 && ![...this.drainables].some((d) => d.wanting);
    if (onlyWorkers) (this.timer as { unref?: () => void }).unref?.();
  }

  private readonly tick = (): void => {
    this.immediate = false;
    this.timer = undefined;
    let work: boolean;
    try {
      work = this.pumpOnce();
    } catch (e) {
      // The module trapped (a Go panic or fatal error): nothing can continue.
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      throw e;
    }
    if (!this.active()) return;
    if (work) {
      this.idleDelay = 0;
      this.schedule(true);
    } else {
      this.idleDelay = Math.min(Math.max(1, this.idleDelay * 2), 10);
      this.schedule(false);
    }
  };

  /** One round: let goroutines run, then hand what waits to its JavaScript side. */
  private pumpOnce(): boolean {
    const work = this.x.hms_pump(0) !== 0;
    this.views();
    for (let id = this.x.hms_completed(); id !== 0n; id = this.x.hms_completed()) {
      const p = this.pending.get(id);
      const code = this.x.hms_call_result(id);
      this.views();
      if (p === undefined) continue;
      if (code === PENDING) continue;
      this.pending.delete(id);
      if (code === 0) p.resolve(this.data());
      else p.reject(this.error(code));
    }
    for (const w of this.workers) w.drain();
    for (const d of this.drainables) if (d.wanting) d.drain();
    return work;
  }
}

/** Runs fn as soon as possible after the current task (setImmediate in Node). */
const queueTask: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === "function"
    ? (fn) => (globalThis as unknown as { setImmediate: (f: () => void) => void }).setImmediate(fn)
    : (() => {
        if (typeof MessageChannel === "undefined") return (fn: () => void) => setTimeout(fn, 0);
        const ch = new MessageChannel();
        const q: (() => void)[] = [];
        ch.port1.onmessage = () => q.shift()?.();
        return (fn: () => void) => {
          q.push(fn);
          ch.port2.postMessage(0);
        };
      })();

const WATCH_BATCH = 4096;

/** A watch stream of the module as a Cursor. */
class WasmCursor<T> implements Cursor<T>, Drainable {
  private waiter: { resolve: (items: T[]) => void; reject: (e: unknown) => void } | undefined;
  private closed = false;

  constructor(
    private readonly mod: WasmModule,
    private readonly handle: bigint,
    private readonly decode: (b: Uint8Array) => T,
  ) {
    mod.drainables.add(this);
  }

  get wanting(): boolean {
    return this.waiter !== undefined;
  }

  next(): Promise<T[]> {
    if (this.closed) return Promise.reject(canceled("the stream was closed"));
    // Fast path: items already waiting.
    const items = this.take();
    if (items instanceof Promise) return items;
    if (items.length > 0) return Promise.resolve(items);
    return new Promise<T[]>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.mod.wake();
    });
  }

  private take(): T[] | Promise<never> {
    try {
      return this.mod.next(this.handle, WATCH_BATCH).map(this.decode);
    } catch (e) {
      this.release();
      return Promise.reject(e as Error); // a LifecycleError // a LifecycleError
    }
  }

  drain(): void {
    const w = this.waiter;
    if (w === undefined) return;
    try {
      const items = this.mod.next(this.handle, WATCH_BATCH);
      if (items.length === 0) return;
      this.waiter = undefined;
      w.resolve(items.map(this.decode));
    } catch (e) {
      this.waiter = undefined;
      this.release();
      w.reject(e);
    }
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.mod.drainables.delete(this);
    try {
      this.mod.closeStream(this.handle);
    } catch {
      // closed with its manager already
    }
  }

  close(): void {
    const w = this.waiter;
    this.waiter = undefined;
    this.release();
    w?.reject(canceled("the stream was closed"));
  }
}

/** A hook worker of the module: invocations are answered by the handler. */
class WasmWorker implements HookServer, Drainable {
  private closed = false;
  readonly wanting = true;

  constructor(
    private readonly mod: WasmModule,
    private readonly handle: bigint,
    private readonly handler: InvocationHandler,
  ) {
    mod.workers.add(this);
    mod.wake();
  }

  drain(): void {
    if (this.closed) return;
    let items: Uint8Array[];
    try {
      items = this.mod.next(this.handle, 0);
    } catch {
      void this.close(); // ended: its manager closed
      return;
    }
    for (const b of items) {
      const inv = fromBinary(HookInvocationSchema, b);
      this.handler(inv).then(
        (r) => this.reply({ ...r, invocationId: inv.invocationId }),
        (e: unknown) => this.reply({ invocationId: inv.invocationId, error: errorText(e) }),
      );
    }
  }

  private reply(r: Parameters<typeof create<typeof HookWorkerReplySchema>>[1]): void {
    if (this.closed) return;
    try {
      this.mod.complete(this.handle, toBinary(HookWorkerReplySchema, create(HookWorkerReplySchema, r)));
    } catch {
      // past its deadline, or the worker closed meanwhile: the hook's failure policy applied
    }
    this.mod.wake();
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.mod.workers.delete(this);
      try {
        this.mod.closeStream(this.handle);
      } catch {
        // closed with its manager already
      }
    }
    return Promise.resolve();
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e) || "the hook failed";
}

/** The embedded core: a manager handle of the module, on the memory store. */
export class WasmCore implements Core {
  readonly mode = "embedded" as const;
  private closed = false;

  private constructor(
    readonly module: WasmModule,
    private readonly handle: bigint,
  ) {}

  static async open(config: object, source?: WasmSource, opts?: LoadOptions): Promise<WasmCore> {
    const mod = await WasmModule.load(source, opts);
    return new WasmCore(mod, mod.open(config));
  }

  private name(m: { parent: { typeName: string }; name: string }): string {
    return `${m.parent.typeName}/${m.name}`;
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    req: MessageShape<I>,
    signal?: AbortSignal,
  ): Promise<MessageShape<O>> {
    if (signal?.aborted) throw canceled(String(signal.reason ?? "aborted"));
    const out = this.module.call(this.handle, this.name(method), toBinary(method.input, req));
    if (out instanceof Uint8Array) return fromBinary(method.output, out);
    // Pending (waiting for a hook): an abort stops waiting for the answer; the
    // transition itself completes or fails in the core on its own deadline.
    const bytes = signal === undefined ? await out : await abortable(out, signal);
    return fromBinary(method.output, bytes);
  }

  stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    req: MessageShape<I>,
  ): Promise<Cursor<MessageShape<O>>> {
    const s = this.module.openWatch(this.handle, this.name(method), toBinary(method.input, req));
    const c = new WasmCursor(this.module, s, (b) => fromBinary(method.output, b));
    return Promise.resolve(c);
  }

  serveHooks(callbacks: string[], handler: InvocationHandler): Promise<HookServer> {
    const hello = toBinary(HookWorkerHelloSchema, create(HookWorkerHelloSchema, { callbacks }));
    const w = this.module.openHooks(this.handle, hello);
    return Promise.resolve(new WasmWorker(this.module, w, handler));
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      // Its streams and workers end (UNAVAILABLE); their readers see it at the next pump.
      this.module.closeHandle(this.handle);
      this.module.wake();
    }
    return Promise.resolve();
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(canceled(String(signal.reason ?? "aborted")));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e as Error); // a LifecycleError
      },
    );
  });
}
