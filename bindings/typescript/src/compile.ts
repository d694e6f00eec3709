// Compiling the WebAssembly module once per file or URL, for Node and browsers alike: only
// how a named module's bytes are loaded differs (platform.ts reads a file,
// platform-browser.ts fetches).

/** Where the WebAssembly module comes from: its bytes, a compiled module, or a URL or path
 * (default: the module's file beside this file). */
export type WasmSource = BufferSource | WebAssembly.Module | URL | string;

/** Whether source names where to load the module from (undefined: the default file)
 * rather than holding it. */
function named(source: WasmSource | undefined): source is URL | string | undefined {
  return source === undefined || typeof source === "string" || source instanceof URL;
}

export interface Compiler {
  /** The module compiled: source, or the file beside this one (a named one once). */
  compile: (source: WasmSource | undefined, file: string) => Promise<WebAssembly.Module>;
  /** Starts compiling in the background (the first call then finds it compiled or
   * compiling); a failure is left for that call to report. */
  precompile: (source: WasmSource | undefined, file: string) => void;
}

/** A compiler that loads named modules with load, each once (a failed one is tried again). */
export function compiler(load: (where: URL | string) => Promise<WebAssembly.Module>): Compiler {
  const compiled = new Map<string, Promise<WebAssembly.Module>>();
  const compile = (source: WasmSource | undefined, file: string): Promise<WebAssembly.Module> => {
    if (source instanceof WebAssembly.Module) return Promise.resolve(source);
    if (!named(source)) return WebAssembly.compile(source);
    // Concatenated, not a template literal: bundlers (Vite) would otherwise copy every file
    // of this folder as an asset, to serve whichever the template could name.
    const where = source ?? new URL("./" + file, import.meta.url);
    const key = String(where);
    let p = compiled.get(key);
    if (p === undefined) {
      p = load(where);
      compiled.set(key, p);
      p.catch(() => compiled.delete(key));
    }
    return p;
  };
  return {
    compile,
    precompile: (source, file) => {
      if (named(source)) compile(source, file).catch(() => undefined);
    },
  };
}
