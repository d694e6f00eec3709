// Globals of the test, bench and build scripts (Node and the browser page), for ESLint.
const names = [
  "console", "process", "setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate",
  "performance", "URL", "TextEncoder", "TextDecoder", "AbortController", "fetch", "window", "document",
  "globalThis", "structuredClone", "URLSearchParams", "location", "MessageChannel", "WebAssembly",
];
export default Object.fromEntries(names.map((n) => [n, "readonly"]));
