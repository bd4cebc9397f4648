import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['build/', 'charts/', 'node_modules/', 'cdk8s/imports/', 'bench/results.json'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
);
