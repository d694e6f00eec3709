// Stands in, in the console's bundle, for the binding's in-process WebAssembly core: the
// console always talks to the server that serves it.
export const WasmCore = {
  open(): never {
    throw new Error("the console uses the server's API; it has no in-process core");
  },
};
