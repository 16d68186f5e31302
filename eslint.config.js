// Lint: only the rules we enforce, with type information. A promise that is
// neither awaited nor given a catch is how one bad event crashed every node of
// a mesh (issue #13): an un-awaited rejection exits the process. Run by `npm run lint`
// (and first in `npm test`).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/build/**'] },
  {
    files: ['proto/src/**/*.ts', 'native/src/**/*.ts', 'core/src/**/*.ts', 'cluster/src/**/*.ts', 'sdk/src/**/*.ts', 'bin/src/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
