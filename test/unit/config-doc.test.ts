import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { CONFIG_DOCS, defaultConfig, parseConfig } from '../../src/core/config.js';
import { configKeys, configTable, defaultsYaml, TABLE_BEGIN, TABLE_END, withConfigTable } from '../../src/core/config-doc.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..'); // dist/test/unit → the checkout

test('every key of the schema has a description, and every description a key', () => {
  const keys = configKeys().map((k) => k.path);
  assert.ok(keys.length > 50, `${keys.length} keys`);
  assert.deepEqual(
    Object.keys(CONFIG_DOCS).filter((p) => !keys.includes(p)),
    [],
    'CONFIG_DOCS entries that name no key',
  );
  for (const k of configKeys()) {
    assert.ok(k.doc.doc.trim() !== '' && !k.doc.doc.includes('\n'), `${k.path}: one line`);
    if (!k.hasDefault && !k.section) assert.notEqual(k.doc.example, undefined, `${k.path} has no default: it needs an example`);
  }
});

test('`config defaults` is a config that parses to the built-in defaults, with every key and a comment above each', () => {
  const yaml = defaultsYaml();
  assert.deepEqual(parseConfig(yaml, 'defaults.yaml'), defaultConfig());
  const lines = yaml.split('\n');
  for (const k of configKeys()) {
    const name = k.path.split('.').pop()!;
    const at = lines.findIndex((l, i) => new RegExp(`^[ #]*${name}:( |$)`).test(l) && lines[i - 1]?.includes(k.doc.doc));
    assert.ok(at > 0, `${k.path} with its comment`);
  }
});

test('the keys printed commented out (no default) make a valid config once uncommented', () => {
  const uncommented = defaultsYaml()
    .split('\n')
    .map((l) => l.replace(/^(\s*)# (\s*[a-z_]+:( .*)?)$/, '$1$2'))
    .join('\n');
  const doc = parseDocument(uncommented);
  assert.deepEqual(doc.errors, []);
  const c = parseConfig(uncommented, 'all.yaml');
  assert.equal(c.redis?.url, 'redis://127.0.0.1:6379/0');
  assert.equal(c.fleet.name, 'gw-a');
  assert.equal(c.notify.webhook, 'https://hooks.example.org/sentry');
});

test("README's configuration table is the one the schema gives (run `make readme-config` after changing src/core/config.ts)", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.ok(readme.includes(TABLE_BEGIN) && readme.includes(TABLE_END), 'README has the config-table markers');
  const have = readme.slice(readme.indexOf(TABLE_BEGIN) + TABLE_BEGIN.length + 1, readme.indexOf(TABLE_END));
  assert.equal(have, configTable(), 'README.md is out of date: run `make readme-config`');
  assert.equal(withConfigTable(readme), readme);
});

test('the table has one row per key that holds a value, and escapes the pipes of its cells', () => {
  const rows = configTable().trimEnd().split('\n').slice(2);
  assert.equal(rows.length, configKeys().filter((k) => !k.section).length);
  for (const r of rows) assert.equal(r.replace(/\\\|/g, '').split('|').length, 6, r);
  assert.ok(rows.some((r) => r.startsWith('| `escalation.max` |  | `7d` |')));
});
