import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDuration, formatDuration, MAX_DURATION_S, parseDuration } from '../../src/core/ttl.js';

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
    assert.throws(
      () => parseDuration(bad, '--ttl'),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'USAGE');
        assert.match(e.message, /^--ttl: /);
        assert.ok(e.hint);
        return true;
      },
      bad,
    );
  }
  assert.throws(() => parseDuration('permanent', 'scan_window', false));
});

test('durations format', () => {
  assert.equal(formatDuration(3600), '1h');
  assert.equal(formatDuration(5400), '1h30m');
  assert.equal(formatDuration(0), 'permanent');
  assert.equal(formatDuration(90061), '1d1h1m1s');
});

test('durations are capped at 10 years (3650d): the kernel expiry is now + ttl in u64 ns', () => {
  assert.equal(MAX_DURATION_S, 3650 * 86400);
  assert.equal(parseDuration('3650d', '--ttl'), MAX_DURATION_S);
  assert.equal(parseDuration('520w', '--ttl'), 520 * 604800);
  for (const huge of ['3650d1s', '100000000d', '99999999999999999999d', `${'9'.repeat(400)}s`, '1d99999999999999999999s']) {
    assert.throws(
      () => parseDuration(huge, '--ttl'),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'USAGE');
        assert.match(e.message, /^--ttl: ".*" is longer than 3650d, the most it can be$/);
        assert.match(e.hint ?? '', /at most 3650d, or permanent/);
        return true;
      },
      huge,
    );
  }
});

test('a setting can narrow the range; numbers of seconds get the same checks as text', () => {
  assert.equal(parseDuration('1d', 'scan_window', false, { max: 86400 }), 86400);
  assert.throws(() => parseDuration('25h', 'scan_window', false, { max: 86400 }), /scan_window: "25h" is longer than 1d/);
  assert.equal(checkDuration(0, 'ban_ttl', true), 0);
  assert.throws(() => checkDuration(0, 'scan_window', false), /scan_window: "0" must be at least 1s/);
  assert.throws(() => checkDuration(1.5, 'scan_window', false), /at least 1s/);
  assert.throws(() => checkDuration(-5, 'ban_ttl', true), /at least 1s/);
  assert.throws(() => checkDuration(1e21, 'ban_ttl', true), /longer than 3650d/);
  assert.throws(() => checkDuration(Infinity, 'ban_ttl', true), /longer than 3650d/);
  assert.throws(() => checkDuration(NaN, 'ban_ttl', true), /at least 1s/);
  // "0s" is not a way to write permanent
  assert.throws(() => parseDuration('0s', 'ban_ttl', true), /at least 1s/);
});
