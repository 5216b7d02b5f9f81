import tseslint from 'typescript-eslint';
import noImportCycle from './scripts/lint/no-import-cycle.js';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '.run/**', 'bench/results/**', '**/public/vendor/**', '**/dist/**', 'packages/client/npm-package/**'] },
  ...tseslint.configs.recommended,
  {
    plugins: { danmaku: { rules: { 'no-import-cycle': noImportCycle } } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      // One-way imports, type-only ones included (scripts/lint/no-import-cycle.js).
      'danmaku/no-import-cycle': 'error',
    },
  },
);
