#!/usr/bin/env node
// Runs the compiled test files with node's test runner, one file at a time
// (the end-to-end files share the machine's network stack and timing).
// Usage: node scripts/run-tests.mjs [unit|bpf|e2e ...]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'bpf', 'e2e'];
const files = [];
for (const s of suites) {
  const dir = join(root, 'dist', 'test', s);
  if (!existsSync(dir)) {
    console.error(`run-tests: ${dir} is missing; run \`make build-dev\` first (\`make build\` compiles src only)`);
    process.exit(1);
  }
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.test.js')) files.push(join(dir, f));
}
if (suites.some((s) => s !== 'unit') && process.getuid?.() !== 0) {
  console.error('run-tests: the bpf and e2e suites need root (BPF, XDP, network namespaces); run `sudo make test`');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  cwd: root,
});
process.exit(r.status ?? 1);
