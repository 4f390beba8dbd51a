import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AlertRecordSchema, BanRecordSchema, check, encodeRecord, HistoryEventSchema, JournalRecordSchema, Rejects } from '../../src/core/records.js';

const ban = {
  op: 'ban',
  time: 1_700_000_000_000,
  target: '198.51.100.7',
  ttl: 600,
  expires: 1_700_000_600_000,
  origin: 'auto',
  reason: 'scan',
  by: 'sentry-xdp',
  port: 22,
  proto: 'tcp',
  kind: 'syn',
  gateway: 'gw-a',
};
const unban = { op: 'unban', time: 1_700_000_000_001, target: '2001:db8::/48', why: 'unbanned by hand', by: 'root' };
const alert = {
  op: 'alert',
  time: 1_700_000_000_002,
  source: '198.51.100.7',
  destination: '198.18.0.1',
  proto: 'tcp',
  port: 22,
  kind: 'syn',
  flags: 'S',
  iface: 'eth0',
  gateway: 'gw-a',
};

test('the records sentry-xdp writes pass the schemas they are read with', () => {
  assert.deepEqual(check(BanRecordSchema, ban), { ok: true, value: ban });
  assert.deepEqual(check(JournalRecordSchema, JSON.stringify(unban)), { ok: true, value: unban });
  assert.deepEqual(check(HistoryEventSchema, alert), { ok: true, value: alert });
  assert.deepEqual(check(AlertRecordSchema, { ...alert, destination: undefined }).ok, true, 'records older than the gateway model');
  assert.equal(check(BanRecordSchema, { ...ban, expires: null, ttl: 0 }).ok, true, 'permanent');
});

test('an impossible record is refused with the field that makes it so', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ ...ban, port: 99_999_999_999 }, /^port: /],
    [{ ...ban, port: -1 }, /^port: /],
    [{ ...ban, target: '300.1.1.1' }, /^target: not an address or CIDR/],
    [{ ...ban, expires: 'soon' }, /^expires: /],
    [{ ...ban, ttl: 1.5 }, /^ttl: /],
    [{ ...ban, origin: 'martian' }, /^origin: /],
    [{ ...ban, proto: 'sctp' }, /^proto: not one of/],
    [{ ...ban, time: -5 }, /^time: /],
    [{ ...unban, target: 7 }, /^target: /],
    [{ op: 'rename', target: '1.2.3.4' }, /^op: /],
    [[1, 2], /./],
  ];
  for (const [rec, why] of cases) {
    const c = check(HistoryEventSchema, rec);
    assert.equal(c.ok, false, JSON.stringify(rec));
    if (!c.ok) assert.match(c.why, why, JSON.stringify(rec));
  }
  assert.deepEqual(check(JournalRecordSchema, '{"op":"ban","target":"9.9'), { ok: false, why: 'not valid JSON (truncated or corrupt)' });
  assert.equal(check(JournalRecordSchema, alert).ok, false, 'an alert is no journal record');
});

test('writers go through the same schema: an impossible record is never stored', () => {
  assert.equal(encodeRecord(BanRecordSchema, ban), JSON.stringify(ban));
  assert.throws(() => encodeRecord(BanRecordSchema, { ...ban, port: 70000 }), /refusing to store an impossible record \(port: /);
});

test('bad records of one read are counted; the first few are kept with their place', () => {
  const r = new Rejects(2);
  for (let i = 1; i <= 5; i++) r.add(`bans.jsonl:${i}`, 'port: too big');
  assert.deepEqual(r.drain('bans.jsonl'), [
    'bans.jsonl:1: port: too big; skipped',
    'bans.jsonl:2: port: too big; skipped',
    '... 5 bad record(s) in all skipped in bans.jsonl',
  ]);
  assert.deepEqual(r.drain('bans.jsonl'), [], 'emptied');
});
