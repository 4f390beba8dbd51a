import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runInGroup } from '../../src/adapters/process-group.js';
import { scratch } from '../helpers/scratch.js';

const { dir } = scratch('sentry-procgroup-');

test('a file descriptor as stdin is handed to the child as it is', async () => {
  const file = join(dir, 'in.txt');
  writeFileSync(file, 'from a real file\n');
  const fd = openSync(file, 'r');
  try {
    // /dev/stdin opens by path, which works on a file and not on a pipe or socket (nft 1.0.6 reads -f - so)
    const r = await runInGroup('cat', ['/dev/stdin'], { stdin: fd, tailBytes: 1024, ownGroup: false, waitForOutput: true });
    assert.deepEqual([r.exitCode, r.stdout, r.stderr], [0, 'from a real file\n', '']);
  } finally {
    closeSync(fd);
  }
});

test('waitForOutput keeps the whole output however large; the default keeps the tail', async () => {
  const whole = await runInGroup('head', ['-c', '3000000', '/dev/zero'], { tailBytes: 1 << 30, ownGroup: false, waitForOutput: true });
  assert.equal(whole.exitCode, 0);
  assert.equal(whole.stdout.length, 3_000_000);
  const tail = await runInGroup('head', ['-c', '3000000', '/dev/zero'], { tailBytes: 100 });
  assert.equal(tail.stdout.length, 103);
  assert.ok(tail.stdout.startsWith('...'));
});

test('without a process group of its own the child alone is killed at the timeout', async () => {
  const r = await runInGroup('sleep', ['5'], { timeoutMs: 100, tailBytes: 100, ownGroup: false });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(r.durationMs < 3000, `${r.durationMs} ms`);
});

test('a program that does not exist: spawnError and its errno, no exit code', async () => {
  const r = await runInGroup(join(dir, 'missing'), [], { tailBytes: 100 });
  assert.equal(r.exitCode, null);
  assert.equal(r.spawnErrno, 'ENOENT');
  assert.equal(r.spawnError, 'cannot start: ENOENT');
});
