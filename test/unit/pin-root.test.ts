import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pinRootStep } from '../../src/adapters/paths.js';
import { SentryError } from '../../src/errors.js';

const P = '/srv/pins';

test('a directory on bpffs is used as it is', () => {
  assert.equal(pinRootStep(P, { kind: 'bpffs' }), 'use');
});

test('an empty directory, or a new one outside bpffs, gets bpffs mounted on it', () => {
  assert.equal(pinRootStep(P, { kind: 'empty' }), 'mount');
  assert.equal(pinRootStep(P, { kind: 'missing', under: 'other' }), 'mount');
});

test('a new directory inside a bpffs is made there; under an unmounted /sys/fs/bpf, bpffs goes on /sys/fs/bpf first', () => {
  assert.equal(pinRootStep(P, { kind: 'missing', under: 'bpffs' }), 'mkdir');
  assert.equal(pinRootStep('/sys/fs/bpf/sentry-xdp', { kind: 'missing', under: 'sys-bpf' }), 'mount-sys-bpf');
});

test('a directory with files that is not bpffs is refused with one line naming the fix', () => {
  assert.throws(
    () => pinRootStep(P, { kind: 'files', names: ['a.txt', 'b', 'c', 'd'] }),
    (e: unknown) => {
      assert.ok(e instanceof SentryError);
      assert.equal(e.code, 'USAGE');
      assert.equal(e.message, 'the pin root /srv/pins holds files (a.txt, b, c, ... (4 entries)) and is not on bpffs: mounting bpffs there would hide them');
      assert.match(e.hint ?? '', /--pin-root .*new or empty directory/);
      assert.doesNotMatch(`${e.message}${e.hint}`, /\n/);
      return true;
    },
  );
});

test('a file is refused', () => {
  assert.throws(() => pinRootStep(P, { kind: 'not-dir' }), /the pin root \/srv\/pins is not a directory/);
});
