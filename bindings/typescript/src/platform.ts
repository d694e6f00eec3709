// Node's side of what differs between Node and browsers (package.json's "browser" field
// maps this file to platform-browser.js for bundlers): loading the WebAssembly module with
// node:wasi, and the remote transports of @connectrpc/connect-node.
import type { Transport } from "@connectrpc/connect";
import { LifecycleError } from "./errors.js";

/** Where the WebAssembly module comes from: its bytes, a compiled module, or a URL or path
 * (default: hms_lifecycle.wasm beside this file). */
export type WasmSource = BufferSource | WebAssembly.Module | URL | string;

export const platformName = "node";

let wasiCtor: Promise<typeof import("node:wasi").WASI> | undefined;

/** node:wasi, imported without its "experimental" warning (Node 20 prints one). */
function loadWasi(): Promise<typeof import("node:wasi").WASI> {
  wasiCtor ??= (async () => {
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const original = process.emitWarning;
    const emit = original.bind(process) as (...a: unknown[]) => void;
    process.emitWarning = ((w: string | Error, ...rest: unknown[]) => {
      const text = typeof w === "string" ? w : w.message;
      if (text.includes("WASI")) return;
      emit(w, ...rest);
    }) as typeof process.emitWarning;
    try {
      return (await import("node:wasi")).WASI;
    } finally {
      process.emitWarning = original;
    }
  })();
  return wasiCtor;
}

/** Compiled modules by file, once per process: a second instantiation (another plugin
 * repository) skips the compilation. */
const compiled = new Map<string, Promise<WebAssembly.Module>>();

/** The module `file` beside this file, or source, compiled (from a file: once). Node's
 * compileStreaming goes through a web Response and is slower than reading the file. */
function compile(source: WasmSource | undefined, file: string): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return Promise.resolve(source);
  if (source !== undefined && typeof source !== "string" && !(source instanceof URL)) return WebAssembly.compile(source);
  const where = source ?? new URL("./" + file, import.meta.url); // not a template: see platform-browser.ts
  const key = String(where);
  let p = compiled.get(key);
  if (p === undefined) {
    p = (async () => {
      const { readFile } = await import("node:fs/promises");
      return WebAssembly.compile(await readFile(where));
    })();
    compiled.set(key, p);
    p.catch(() => compiled.delete(key));
  }
  return p;
}

/** Starts compiling the module in the background (the first call then finds it compiled
 * or compiling); a failure is left for that call to report. */
export function precompile(source: WasmSource | undefined, file: string): void {
  if (source instanceof WebAssembly.Module || (source !== undefined && typeof source !== "string" && !(source instanceof URL))) return;
  compile(source, file).catch(() => undefined);
}

/**
 * Instantiates the module (`file` beside this file unless source says otherwise) with
 * node:wasi and runs Go's initialization. preopens maps directories the module sees to
 * host directories (the plugin repository).
 */
export async function instantiateWasi(source: WasmSource | undefined, file: string, preopens?: Record<string, string>): Promise<WebAssembly.Instance> {
  const [WASI, mod] = await Promise.all([loadWasi(), compile(source, file)]);
  const wasi = new WASI({ version: "preview1", returnOnExit: true, args: [], env: {}, preopens: preopens ?? {} });
  const inst = await WebAssembly.instantiate(mod, wasi.getImportObject() as WebAssembly.Imports);
  wasi.initialize(inst);
  return inst;
}

/** Remote transport options. */
export interface TransportOptions {
  endpoint: string;
  transport: "connect" | "grpc" | "grpc-web";
  token?: string | undefined;
}

export interface RemoteTransport {
  transport: Transport;
  /** Whether ServeHooks (a stream both ways) works over it. */
  bidi: boolean;
  close(): void;
}

export async function createTransport(o: TransportOptions, interceptors: import("@connectrpc/connect").Interceptor[]): Promise<RemoteTransport> {
  const node = await import("@connectrpc/connect-node");
  // HTTP/2 (cleartext with prior knowledge for http://): streams both ways, for ServeHooks.
  const sessions = new node.Http2SessionManager(o.endpoint, { idleConnectionTimeoutMs: 1000 });
  const common = { baseUrl: o.endpoint, interceptors, httpVersion: "2" as const, sessionManager: sessions };
  let transport: Transport;
  switch (o.transport) {
    case "connect":
      transport = node.createConnectTransport(common);
      break;
    case "grpc":
      transport = node.createGrpcTransport(common);
      break;
    case "grpc-web":
      transport = node.createGrpcWebTransport(common);
      break;
    default:
      throw new LifecycleError(3, `transport ${String(o.transport)}: use "connect", "grpc" or "grpc-web"`);
  }
  return { transport, bidi: true, close: () => sessions.abort() };
}
