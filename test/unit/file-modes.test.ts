import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeDir, writeFileAtomic } from '../../src/adapters/file-modes.js';
import { AllowFile } from '../../src/adapters/allow-file.js';
import { scratch, withUmask } from '../helpers/scratch.js';

const { dir } = scratch('sentry-file-modes-');
const mode = (p: string) => statSync(p).mode & 0o7777;

for (const umask of [0o077, 0o000]) {
  const u = umask.toString(8).padStart(3, '0');
  test(`makeDir and writeFileAtomic set the mode asked for with umask ${u}`, () => {
    withUmask(umask, () => {
      makeDir(join(dir, u, 'a', 'b'), 0o750);
      for (const d of [join(dir, u), join(dir, u, 'a'), join(dir, u, 'a', 'b')]) assert.equal(mode(d), 0o750, d);
      const f = join(dir, u, 'a', 'b', 'f');
      writeFileAtomic(f, 'one\n', { mode: 0o640 });
      assert.equal(mode(f), 0o640);
      writeFileAtomic(f, 'two\n', { mode: 0o644, sync: true });
      assert.equal(readFileSync(f, 'utf8'), 'two\n');
      assert.equal(mode(f), 0o644);
      assert.deepEqual(readdirSync(join(dir, u, 'a', 'b')), ['f'], 'no temporary file left');
    });
  });

  test(`the allow list: state dir 0750, allow.txt 0640 with umask ${u}`, () => {
    withUmask(umask, () => {
      const a = new AllowFile(join(dir, `state-${u}`));
      a.write(['192.0.2.0/24']);
      assert.equal(mode(a.dir), 0o750);
      assert.equal(mode(a.file), 0o640);
      assert.deepEqual(a.read(), ['192.0.2.0/24']);
    });
  });
}

test('an existing directory keeps its mode (the admin chose it)', () => {
  const d = join(dir, 'existing');
  mkdirSync(d, { mode: 0o700 });
  makeDir(d, 0o755);
  assert.equal(mode(d), 0o700);
});

test('writeFileAtomic leaves the file alone when `unchanged` says it changed meanwhile', () => {
  const f = join(dir, 'raced');
  writeFileSync(f, 'theirs\n');
  const done = writeFileAtomic(f, 'ours\n', { mode: 0o644, unchanged: () => false });
  assert.equal(done, false);
  assert.equal(readFileSync(f, 'utf8'), 'theirs\n');
  assert.ok(!existsSync(`${f}.${process.pid}.tmp`));
});
