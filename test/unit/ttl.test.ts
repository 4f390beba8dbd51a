import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '../../src/core/ttl.js';

test('durations parse', () => {
  assert.equal(parseDuration('90s', 'ttl'), 90);
  assert.equal(parseDuration('10m', 'ttl'), 600);
  assert.equal(parseDuration('1h30m', 'ttl'), 5400);
  assert.equal(parseDuration('7d', 'ttl'), 604800);
  assert.equal(parseDuration('permanent', 'ttl'), 0);
  assert.equal(parseDuration(' 2W ', 'ttl'), 1209600);
});

test('bad durations are refused with a hint', () => {
  for (const bad of ['10x', '-5m', '', 'm', '1.5h', '0s', 'permanent!']) {
    assert.throws(() => parseDuration(bad, '--ttl'), (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, 'USAGE');
      assert.match(e.message, /^--ttl: /);
      assert.ok(e.hint);
      return true;
    }, bad);
  }
  assert.throws(() => parseDuration('permanent', 'scan_window', false));
});

test('durations format', () => {
  assert.equal(formatDuration(3600), '1h');
  assert.equal(formatDuration(5400), '1h30m');
  assert.equal(formatDuration(0), 'permanent');
  assert.equal(formatDuration(90061), '1d1h1m1s');
});
