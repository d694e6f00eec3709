// Node's side of what differs between Node and browsers (package.json's "browser" field
// maps this file to platform-browser.js for bundlers): loading the WebAssembly module with
// node:wasi, and the remote transports of @connectrpc/connect-node.
import type { Transport } from "@connectrpc/connect";
import { compiler, type WasmSource } from "./compile.js";
import { LifecycleError } from "./errors.js";

export type { WasmSource };

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

/** From a file, once per process: a second instantiation (another plugin repository) skips
 * the compilation. Node's compileStreaming goes through a web Response and is slower than
 * reading the file. */
const { compile, precompile } = compiler(async (where) => {
  const { readFile } = await import("node:fs/promises");
  return WebAssembly.compile(await readFile(where));
});
export { precompile };

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
