#!/usr/bin/env node
// Rewrites README's table of config keys (between the config-table markers) from
// the schema and CONFIG_DOCS in src/core/config.ts. `--check` only says whether it
// is up to date (exit 1 when not). Run `make build` first; `make readme-config` does.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { withConfigTable } = await import(join(root, 'dist', 'src', 'core', 'config-doc.js'));
const file = join(root, 'README.md');
const before = readFileSync(file, 'utf8');
const after = withConfigTable(before);
if (process.argv.includes('--check')) {
  if (after !== before) {
    console.error("readme-config: README.md's config table is out of date; run `make readme-config`");
    process.exit(1);
  }
  console.log("readme-config: README.md's config table is up to date");
} else if (after !== before) {
  writeFileSync(file, after);
  console.log('readme-config: rewrote the config table in README.md');
} else {
  console.log("readme-config: README.md's config table is up to date");
}
