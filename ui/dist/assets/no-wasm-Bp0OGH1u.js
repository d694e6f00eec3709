const e={open(){throw new Error("the console uses the server's API; it has no in-process core")}};export{e as WasmCore};
