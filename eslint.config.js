// eslint for the page's native ES modules (static/js), run by `make lint`. A flat config in the manner of
// Netron's: the recommended rules, plus a few that catch real bugs in this code (a loose ==, a binding that
// should not change, an unused import or variable, a global the browser does not have).

import globals from "globals";
import js from "@eslint/js";

export default [
  {
    ignores: ["node_modules/**", "static/vendor/**"],
  },
  js.configs.recommended,
  {
    files: ["static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: {
        ...globals.browser,
        // plotly.js is a classic script (/vendor/plotly.min.js) that plotting.js adds to the page
        Plotly: "readonly",
      },
    },
    rules: {
      "array-callback-return": "error",
      "default-case-last": "error",
      eqeqeq: "error",
      "no-constructor-return": "error",
      "no-duplicate-imports": "error",
      "no-implicit-globals": "error",
      "no-promise-executor-return": "error",
      "no-self-compare": "error",
      "no-template-curly-in-string": "error",
      "no-undef": "error",
      "no-unmodified-loop-condition": "error",
      "no-unreachable-loop": "error",
      "no-unused-expressions": "error",
      "no-unused-vars": ["error", { args: "after-used", caughtErrors: "all" }],
      "no-use-before-define": ["error", { functions: false, classes: true, variables: false }],
      "no-var": "error",
      "prefer-const": "error",
      radix: "error",
    },
  },
];
