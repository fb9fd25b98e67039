// @ts-check
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', '.tools/', 'db/migrations/', 'coverage/', '**/*.cjs', 'eslint.config.js'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': ['error', { maxDepth: 10 }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'crypto', 'pg', 'express', 'drizzle-orm', 'drizzle-orm/*', 'pino'],
              message: 'workflows/ must stay deterministic',
            },
            {
              group: ['../db', '../db/*', '../api', '../api/*', '../infra', '../infra/*'],
              message: 'workflows/ may import domain/ and definitions only',
            },
            { group: ['../activities', '../activities/*'], message: 'import activities as a type only', allowTypeImports: true },
          ],
        },
      ],
    },
  },
);
