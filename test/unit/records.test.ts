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

test('a stored ban takes the hand-checked fast path only where zod would return it unchanged', () => {
  const base = {
    op: 'ban',
    time: 1_700_000_000_000,
    target: '198.51.100.7',
    ttl: 600,
    expires: 1_700_000_600_000,
    origin: 'auto',
    reason: 'scan',
    by: 'sentry-xdp',
  };
  const variants: unknown[] = [
    base,
    ban,
    { ...base, expires: null, ttl: 0 },
    { ...base, target: '2001:db8::/48' },
    { ...base, target: '10.0.0.0/8', gateway: 'gw-b' },
    { ...base, port: 65535, proto: 'udp', kind: 'udp' },
    { ...base, port: 0, proto: 'icmp' },
    { ...base, time: 0.5 },
    { gateway: 'gw-a', ...base }, // keys out of the schema's order: zod reorders them
    { ...base, extra: 1 }, // a key zod strips
    { ...base, port: null },
    { ...base, port: 65536 },
    { ...base, port: 1.5 },
    { ...base, ttl: -1 },
    { ...base, ttl: 2 ** 53 },
    { ...base, ttl: '600' },
    { ...base, time: -1 },
    { ...base, expires: 'soon' },
    { ...base, origin: 'martian' },
    { ...base, proto: 'sctp' },
    { ...base, target: '300.1.1.1' },
    { ...base, target: '01.2.3.4' },
    { ...base, target: 7 },
    { ...base, reason: 'x'.repeat(4096) },
    { ...base, reason: 'x'.repeat(4097) },
    { ...base, by: undefined },
    { ...base, gateway: 5 },
    { ...base, op: 'unban' },
    { op: 'unban', time: 1, target: '198.51.100.7', why: 'by hand' },
    [base],
    null,
    'ban',
  ];
  for (const schema of [BanRecordSchema, JournalRecordSchema]) {
    for (const v of variants) {
      const text = JSON.stringify(v);
      const fast = check(schema as typeof BanRecordSchema, text);
      const slow = (schema as typeof BanRecordSchema).safeParse(JSON.parse(text));
      assert.equal(fast.ok, slow.success, text);
      if (fast.ok && slow.success) assert.equal(JSON.stringify(fast.value), JSON.stringify(slow.data), `the same record, keys in the same order: ${text}`);
      if (!fast.ok) assert.match(fast.why, /\S/, text);
    }
  }
  const c = check(BanRecordSchema, JSON.stringify({ ...base, port: 70000 }));
  assert.deepEqual(c, { ok: false, why: 'port: Too big: expected number to be <=65535' }, 'a bad record is still named by zod');
});
