import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "./scripts/globals.mjs";

export default tseslint.config(
  { ignores: ["dist/", "build/", "node_modules/", "src/gen/"] },
  js.configs.recommended,
  {
    files: ["src/**/*.ts"],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "@typescript-eslint/no-unnecessary-type-parameters": "off",
      "@typescript-eslint/no-unnecessary-condition": "off",
      "@typescript-eslint/no-invalid-void-type": "off",
      "@typescript-eslint/no-extraneous-class": "off",
      "@typescript-eslint/prefer-promise-reject-errors": "off",
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
    },
  },
  {
    files: ["test/**/*.mjs", "scripts/**/*.mjs", "bench/**/*.mjs", "*.mjs"],
    languageOptions: { globals: globals },
  },
);
