// ESLint over the application source: typescript-eslint's strict, type-checked rules (they
// read the types through tsconfig.json) plus its stylistic type-checked set.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["src/**/*.gen.ts"] },
  {
    files: ["src/**/*.ts"],
    extends: [js.configs.recommended, ...tseslint.configs.strictTypeChecked, ...tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers in template literals (sizes, counts, percentages) are what the UI prints.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      // Its fix (`x!`) is what strict's no-non-null-assertion forbids: `as T` stays allowed.
      "@typescript-eslint/non-nullable-type-assertion-style": "off",
      // An empty string means "not given" in form fields and paths: `||` is meant there.
      "@typescript-eslint/prefer-nullish-coalescing": ["error", { ignorePrimitives: { string: true } }],
    },
  },
  {
    // Tests index into what they have just built, fake async transports that answer at
    // once, and read JSON they wrote themselves.
    files: ["src/**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
    },
  },
);
