// The browser's side of what differs between Node and browsers (see platform.ts): the
// WebAssembly module through a small WASI shim (@bjorn3/browser_wasi_shim), fetched from a
// URL, and the remote transports of @connectrpc/connect-web.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { LifecycleError } from "./errors.js";

export type WasmSource = BufferSource | WebAssembly.Module | URL | string;

export const platformName = "browser";

export async function instantiateWasi(source: WasmSource | undefined): Promise<WebAssembly.Instance> {
  const shim = await import("@bjorn3/browser_wasi_shim");
  const wasi = new shim.WASI([], [], [
    new shim.OpenFile(new shim.File([])), // stdin
    shim.ConsoleStdout.lineBuffered((l: string) => console.log(l)),
    shim.ConsoleStdout.lineBuffered((l: string) => console.warn(l)),
  ]);
  const imports = { wasi_snapshot_preview1: wasi.wasiImport } as WebAssembly.Imports;
  let inst: WebAssembly.Instance;
  if (source instanceof WebAssembly.Module) {
    inst = await WebAssembly.instantiate(source, imports);
  } else if (source === undefined || typeof source === "string" || source instanceof URL) {
    const url = source ?? new URL("./hms_lifecycle.wasm", import.meta.url);
    const res = await fetch(url);
    if (!res.ok) throw new LifecycleError(14, `fetch ${String(url)}: HTTP ${res.status}`);
    if (typeof WebAssembly.instantiateStreaming === "function" && res.headers.get("content-type")?.startsWith("application/wasm")) {
      inst = (await WebAssembly.instantiateStreaming(res, imports)).instance;
    } else {
      inst = (await WebAssembly.instantiate(await res.arrayBuffer(), imports)).instance;
    }
  } else {
    inst = (await WebAssembly.instantiate(source, imports)).instance;
  }
  wasi.initialize(inst as unknown as { exports: { memory: WebAssembly.Memory; _initialize?: () => unknown } });
  return inst;
}

export interface TransportOptions {
  endpoint: string;
  transport: "connect" | "grpc" | "grpc-web";
  token?: string | undefined;
}

export interface RemoteTransport {
  transport: Transport;
  bidi: boolean;
  close(): void;
}

export async function createTransport(o: TransportOptions, interceptors: Interceptor[]): Promise<RemoteTransport> {
  const web = await import("@connectrpc/connect-web");
  const common = { baseUrl: o.endpoint, interceptors };
  switch (o.transport) {
    case "connect":
      return { transport: web.createConnectTransport(common), bidi: false, close: () => {} };
    case "grpc-web":
      return { transport: web.createGrpcWebTransport(common), bidi: false, close: () => {} };
    case "grpc":
      throw new LifecycleError(3, 'transport "grpc" needs HTTP/2 trailers, which browsers do not give pages: use "connect" or "grpc-web"');
    default:
      throw new LifecycleError(3, `transport ${String(o.transport)}: use "connect" or "grpc-web"`);
  }
}
