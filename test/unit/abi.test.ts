import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ABI_VERSION, Layout, MapSize, Stat, STAT_COUNT } from '../../src/core/abi.js';
import { PACKAGE_ROOT } from '../../src/adapters/kernel.js';

test('src/core/abi.ts agrees with bpf/sentry_shared.h (offsetof from the C compiler)', () => {
  const c = JSON.parse(execFileSync(join(PACKAGE_ROOT, 'build', 'abi_dump'), { encoding: 'utf8' })) as {
    abi: number;
    stats: number;
    sizes: Record<string, number>;
    structs: Record<string, { size: number; fields: Record<string, [number, number]> }>;
  };
  assert.equal(c.abi, ABI_VERSION);
  assert.equal(c.stats, STAT_COUNT);
  assert.deepEqual({ ...MapSize }, c.sizes, 'map capacities (SX_MAX_*)');
  assert.equal(Object.keys(Stat).length, STAT_COUNT);
  const ts = Layout as unknown as Record<string, { size: number; fields: Record<string, readonly [number, number]> }>;
  assert.deepEqual(Object.keys(ts).sort(), Object.keys(c.structs).sort());
  for (const [name, s] of Object.entries(c.structs)) {
    assert.equal(ts[name]!.size, s.size, `${name} size`);
    assert.deepEqual(Object.fromEntries(Object.entries(ts[name]!.fields).map(([k, v]) => [k, [...v]])), s.fields, `${name} fields`);
  }
});
