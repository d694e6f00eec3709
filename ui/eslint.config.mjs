import js from "@eslint/js";
import tseslint from "typescript-eslint";

const node = { process: "readonly", console: "readonly", fetch: "readonly", setTimeout: "readonly", clearTimeout: "readonly", URL: "readonly", performance: "readonly" };

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  {
    files: ["src/**/*.{ts,tsx}", "vite.config.ts"],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    files: ["test/**/*.mjs", "*.mjs"],
    languageOptions: { globals: { ...node, window: "readonly", document: "readonly", requestAnimationFrame: "readonly", PerformanceObserver: "readonly" } },
  },
);
