// ESLint (flat config): typescript-eslint's recommended rules, the layer and cycle checks of the
// architecture, and the 120-line limit on functions in src/. Formatting is prettier's
// (.prettierrc.json); eslint-config-prettier turns off every rule that would disagree with it.
// `npm run lint` runs both.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import comments from '@eslint-community/eslint-plugin-eslint-comments/configs';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Modules that do I/O: the core is pure (DESIGN.md), adapters wrap these. node:crypto stays allowed (hashing). */
const IO_MODULES = [
  'fs',
  'child_process',
  'net',
  'dgram',
  'dns',
  'http',
  'https',
  'http2',
  'tls',
  'os',
  'readline',
  'cluster',
  'worker_threads',
  'process',
  'inspector',
  'v8',
  'vm',
  'timers',
];
const IO_PACKAGES = ['ioredis', 'execa', 'koffi', 'split2', 'prom-client', 'cli-progress'];
const CORE_IS_PURE = 'core is pure: do I/O in an adapter and pass it in';

/** cli -> daemon -> adapters -> core -> the bpf ABI (src/core/abi.ts); src/errors.ts is below them all. */
const LAYERS = [
  { target: './src/core', from: ['./src/adapters', './src/daemon', './src/cli'], message: 'core is the domain: it imports no adapter, daemon or CLI module' },
  { target: './src/core/abi.ts', from: './src/core', except: ['./abi.ts'], message: 'the bpf ABI mirror is the lowest layer: it imports nothing from core' },
  { target: './src/adapters', from: ['./src/daemon', './src/cli'], message: 'adapters wrap side effects: they import no daemon or CLI module' },
  { target: './src/daemon', from: './src/cli', message: 'the daemon imports nothing from the CLI' },
  { target: './src/errors.ts', from: './src', except: ['./errors.ts'], message: 'errors.ts is shared by every layer: it imports none of them' },
  { target: './src', from: ['./test', './bench', './scripts'], message: 'production code imports no test, bench or script module' },
];

export default defineConfig(
  { ignores: ['dist/', 'build/', 'node_modules/'] },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  comments.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.dev.json' })],
    },
    rules: {
      // "no disable comments left without a reason": every eslint-disable says why after ` -- `
      '@eslint-community/eslint-comments/require-description': ['error', { ignore: [] }],
      '@eslint-community/eslint-comments/disable-enable-pair': ['error', { allowWholeFile: true }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-self-import': 'error',
      'import-x/no-restricted-paths': ['error', { zones: LAYERS }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: false, skipComments: false, IIFEs: true }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      // the clock, the environment, timers and the console are side effects too: adapters pass them in
      'no-restricted-globals': [
        'error',
        ...['process', 'console', 'fetch', 'setTimeout', 'setInterval', 'setImmediate'].map((name) => ({ name, message: CORE_IS_PURE })),
      ],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: CORE_IS_PURE }],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: CORE_IS_PURE }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: `^(node:)?(${IO_MODULES.join('|')})(/.*)?$`, message: CORE_IS_PURE },
            { regex: `^(${IO_PACKAGES.join('|')})(/.*)?$`, message: CORE_IS_PURE },
          ],
        },
      ],
    },
  },
  prettier,
);
