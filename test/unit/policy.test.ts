import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr } from '../../src/core/addr.js';
import { contains, escalate, OffenceTracker, ttlFor } from '../../src/core/policy.js';

const c = parseCidr;

test('contains', () => {
  assert.ok(contains(c('10.0.0.0/8'), c('10.1.2.3')));
  assert.ok(contains(c('10.0.0.0/8'), c('10.128.0.0/9')));
  assert.ok(!contains(c('10.0.0.0/9'), c('10.128.0.1')));
  assert.ok(contains(c('0.0.0.0/0'), c('203.0.113.9')));
  assert.ok(!contains(c('0.0.0.0/0'), c('2001:db8::1')));
  assert.ok(contains(c('2001:db8::/32'), c('2001:db8:ffff::1')));
  assert.ok(!contains(c('10.1.2.3'), c('10.0.0.0/8')));
});

test('per-CIDR TTL rules: the most specific match wins', () => {
  const rules = [
    { net: c('10.0.0.0/8'), ttl: 600 },
    { net: c('10.9.0.0/16'), ttl: 60 },
    { net: c('0.0.0.0/0'), ttl: 86400 },
  ];
  assert.equal(ttlFor(c('10.1.1.1'), rules, 3600), 600);
  assert.equal(ttlFor(c('10.9.1.1'), rules, 3600), 60);
  assert.equal(ttlFor(c('203.0.113.9'), rules, 3600), 86400);
  assert.equal(ttlFor(c('2001:db8::1'), rules, 3600), 3600);
});

test('escalation: each repeat within the look-back lasts longer, up to the maximum', () => {
  const e = { enabled: true, factor: 2, max: 3600, lookback: 86400 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => escalate(600, n, e)),
    [600, 1200, 2400, 3600, 3600, 3600, 3600],
  );
  assert.equal(escalate(0, 5, e), 0, 'permanent stays permanent');
  assert.equal(escalate(600, 3, { ...e, enabled: false }), 600);
  assert.equal(escalate(7200, 2, e), 7200, 'a base above the maximum is not cut down');
});

test('offences are counted within the look-back, and the tracker is bounded', () => {
  const t = new OffenceTracker(1000, 3);
  assert.equal(t.record('a', 0), 1);
  assert.equal(t.record('a', 500), 2);
  assert.equal(t.record('a', 1400), 2, 'the offence at 0 is out of the window');
  for (const s of ['b', 'c', 'd']) t.record(s, 1500);
  assert.equal(t.record('a', 1600), 1, 'a was forgotten when the tracker was full');
});
