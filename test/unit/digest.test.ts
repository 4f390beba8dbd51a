import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DigestBuilder, type DigestEvent, type DigestMessage } from '../../src/core/digest.js';
import { SentryError } from '../../src/errors.js';

const T0 = Date.UTC(2024, 9, 14, 19, 23, 10);
const MIN = 60_000;

function alert(source: string, time: number, port = 23, proto: 'tcp' | 'udp' = 'tcp'): DigestEvent {
  return { time, kind: 'alert', source, proto, port, scan: proto === 'tcp' ? 'TCP SYN/Normal scan' : 'UDP scan' };
}
function ban(source: string, time: number, port = 23): DigestEvent {
  return { time, kind: 'ban', source, proto: 'tcp', port, ttlSeconds: 600, origin: 'auto', reason: `TCP SYN/Normal scan to TCP port ${port}` };
}

test('a burst of 500 scanning sources gives one message that names every one of them', () => {
  const d = new DigestBuilder({ intervalMs: 5 * MIN, host: 'gw1' });
  const sources: string[] = [];
  for (let i = 0; i < 500; i++) {
    const src = `198.18.${i >> 8}.${i & 255}`;
    sources.push(src);
    const t = T0 + i * 10;
    assert.deepEqual(d.add(alert(src, t), t), {});
    assert.deepEqual(d.add(ban(src, t), t), {});
  }
  // The 12 loudest come back for more (bans are in the kernel; these are the alerts before them).
  for (let i = 0; i < 12; i++) d.add(alert(sources[i]!, T0 + 6000, 22), T0 + 6000);

  const now = T0 + 5 * MIN;
  assert.equal(d.take(now - 1), undefined, 'not before the interval has passed');
  assert.equal(d.due(now), true);
  const m = d.take(now);
  assert.ok(m);
  assert.equal(m.urgent, false);
  assert.equal(m.subject, 'sentry-xdp on gw1: 500 new bans, 512 alerts in the last 5m');
  assert.doesNotMatch(m.subject, /\n/);
  for (const src of sources) assert.match(m.text, new RegExp(`^  ${src.replaceAll('.', '\\.')} `, 'm'), `${src} is named`);
  assert.doesNotMatch(m.text, /and \d+ more/);
  assert.match(m.text, /^New bans \(500\):$/m);
  assert.match(m.text, /^ {2}198\.18\.0\.0 +19:23:10 {2}ban 10m, auto: TCP SYN\/Normal scan to TCP port 23$/m);
  assert.match(m.text, /^Top 10 offenders by alerts:$/m);
  assert.match(m.text, /^ {2}198\.18\.0\.0 +2 {2}tcp\/22,tcp\/23 {2}TCP SYN\/Normal scan$/m);
  assert.match(m.text, /^ {2}tcp\/23 +500$/m);
  assert.match(m.text, /^ {2}tcp\/22 +12$/m);
  assert.match(m.text, /^ +512 {2}TCP SYN\/Normal scan$/m);

  const data = m.json as {
    counts: { alerts: number; new_bans: number; alert_sources: number };
    new_bans: { source: string }[];
    top_offenders: { source: string; alerts: number }[];
    top_ports: { proto: string; port: number; alerts: number }[];
  };
  assert.equal(data.counts.alerts, 512);
  assert.equal(data.counts.new_bans, 500);
  assert.equal(data.counts.alert_sources, 500);
  assert.deepEqual(
    data.new_bans.map((b) => b.source),
    sources,
  );
  assert.equal(data.top_offenders.length, 10);
  assert.deepEqual(data.top_offenders[0], { source: '198.18.0.0', alerts: 2, ports: ['tcp/22', 'tcp/23'], scans: ['TCP SYN/Normal scan'] });
  assert.deepEqual(data.top_ports, [
    { proto: 'tcp', port: 23, alerts: 500 },
    { proto: 'tcp', port: 22, alerts: 12 },
  ]);

  assert.equal(d.take(now), undefined, 'everything went into that one message');
  assert.equal(d.due(now + 10 * MIN), false);
});

test('at most one message per interval, however the events are spread', () => {
  const interval = 5 * MIN;
  const d = new DigestBuilder({ intervalMs: interval });
  const sent: { at: number; m: DigestMessage }[] = [];
  // One knock every 7 seconds for an hour, polling every second as a daemon timer would.
  for (let t = T0; t < T0 + 60 * MIN; t += 1000) {
    if ((t - T0) % 7000 === 0) d.add(alert(`203.0.113.${((t - T0) / 7000) % 250}`, t, 513, 'udp'), t);
    if (d.due(t)) {
      const m = d.take(t);
      assert.ok(m);
      sent.push({ at: t, m });
    }
  }
  assert.ok(sent.length >= 11 && sent.length <= 12, `${sent.length} messages in an hour`);
  for (let i = 1; i < sent.length; i++) assert.ok(sent[i]!.at - sent[i - 1]!.at >= interval, 'never two within one interval');
  const total = sent.reduce((n, s) => n + (s.m.json as { counts: { alerts: number } }).counts.alerts, 0);
  const added = Math.ceil((60 * MIN) / 7000);
  assert.ok(total <= added && total >= added - Math.ceil(interval / 7000), 'every knock is counted once (the tail is still pending)');

  // take() itself refuses to hand out a second message within the interval.
  const e = new DigestBuilder({ intervalMs: interval });
  e.add(alert('203.0.113.1', T0, 9, 'udp'), T0);
  assert.ok(e.take(T0 + interval));
  e.add(alert('203.0.113.2', T0 + interval + 1, 9, 'udp'), T0 + interval + 1);
  assert.equal(e.take(T0 + interval + 2), undefined);
  assert.equal(e.take(T0 + 2 * interval), undefined, 'the second event has not waited an interval yet');
  assert.equal(e.nextDue(), T0 + 2 * interval + 1);
  assert.ok(e.take(T0 + 2 * interval + 1));
  // force (shutdown) takes early.
  e.add(alert('203.0.113.3', T0 + 3 * interval, 9, 'udp'), T0 + 3 * interval);
  assert.ok(e.take(T0 + 3 * interval, { force: true }));
});

test('an event matching an urgent rule is sent at once, and still counted in the next digest', () => {
  const d = new DigestBuilder({
    intervalMs: 5 * MIN,
    host: 'gw1',
    urgent: [{ cidr: '192.0.2.0/24' }, { port: 22, kind: 'alert' }, { kind: 'not_blocked' }],
  });
  assert.deepEqual(d.add(alert('198.51.100.7', T0, 23), T0), {}, 'no rule matches');
  const r1 = d.add(ban('192.0.2.77', T0 + 1), T0 + 1);
  assert.ok(r1.urgent);
  assert.equal(r1.urgent.urgent, true);
  assert.equal(r1.urgent.subject, 'sentry-xdp on gw1: URGENT 192.0.2.77 banned for 10m (TCP SYN/Normal scan to TCP port 23)');
  assert.match(r1.urgent.text, /rule: source in 192\.0\.2\.0\/24/);
  assert.equal((r1.urgent.json as { event: { source: string } }).event.source, '192.0.2.77');

  const r2 = d.add(alert('198.51.100.8', T0 + 2, 22), T0 + 2);
  assert.match(r2.urgent?.subject ?? '', /URGENT TCP SYN\/Normal scan from 198\.51\.100\.8 to TCP port 22$/);
  assert.deepEqual(d.add(ban('198.51.100.8', T0 + 3, 22), T0 + 3), {}, 'the port rule is for alerts only');
  const r3 = d.add({ time: T0 + 4, kind: 'not_blocked', source: '198.51.100.9', reason: 'the kernel ban table is full' }, T0 + 4);
  assert.match(r3.urgent?.subject ?? '', /198\.51\.100\.9 could not be blocked \(the kernel ban table is full\)$/);

  assert.equal(d.due(T0 + 4), false, 'urgent messages do not make the digest due early');
  const m = d.take(T0 + 5 * MIN);
  assert.ok(m);
  assert.equal(m.subject, 'sentry-xdp on gw1: 2 new bans, 1 source not blocked, 2 alerts in the last 5m');
  assert.match(m.text, /^3 urgent events, 3 sent at once$/m);
  assert.match(m.text, /^Could not be blocked \(1\):\n {2}198\.51\.100\.9 .*the kernel ban table is full$/m);
  assert.match(m.text, /^ {2}192\.0\.2\.77 /m);
});

test('urgent messages are rate-limited too: a sweep over an urgent port does not flood', () => {
  const d = new DigestBuilder({ intervalMs: MIN, urgent: [{ port: 22 }], maxUrgent: 3 });
  let immediate = 0;
  for (let i = 0; i < 200; i++) if (d.add(alert(`198.18.1.${i}`, T0 + i, 22), T0 + i).urgent) immediate++;
  assert.equal(immediate, 3);
  const m = d.take(T0 + MIN);
  assert.ok(m);
  assert.match(m.text, /^200 urgent events, 3 sent at once, 197 held for this digest \(more than 3 per interval\)$/m);
  // A new interval allows urgent messages again.
  assert.ok(d.add(alert('198.18.2.1', T0 + MIN + 1, 22), T0 + MIN + 1).urgent);
});

test('an interval where nothing happened gives no message', () => {
  const d = new DigestBuilder({ intervalMs: MIN });
  assert.equal(d.due(T0 + 10 * MIN), false);
  assert.equal(d.take(T0 + 10 * MIN), undefined);
  assert.equal(d.take(T0 + 10 * MIN, { force: true }), undefined);
  assert.equal(d.nextDue(), undefined);
  d.add(alert('198.51.100.1', T0, 23), T0);
  assert.ok(d.take(T0 + MIN));
  assert.equal(d.take(T0 + 3 * MIN), undefined, 'the next interval was empty');
});

test('names past maxListed are counted, not listed', () => {
  const d = new DigestBuilder({ intervalMs: MIN, maxListed: 100 });
  for (let i = 0; i < 250; i++) d.add(ban(`2001:db8::${i.toString(16)}`, T0), T0);
  const m = d.take(T0 + MIN);
  assert.ok(m);
  assert.match(m.text, /^New bans \(250\):$/m);
  assert.equal(m.text.match(/^ {2}2001:db8::/gm)?.length, 100);
  assert.match(m.text, /^ {2}and 150 more$/m);
  assert.equal((m.json as { new_bans_not_listed: number }).new_bans_not_listed, 150);
});

test('text from elsewhere (a fleet peer) cannot break the subject line', () => {
  const d = new DigestBuilder({ intervalMs: MIN, host: 'gw1\nBcc: x@example.net', urgent: [{ kind: 'ban' }] });
  const r = d.add({ time: T0, kind: 'ban', source: '198.51.100.1\r\nX-Evil: 1', reason: 'fleet\nSubject: hi', origin: 'fleet' }, T0);
  assert.ok(r.urgent);
  assert.doesNotMatch(r.urgent.subject, /[\r\n]/);
  const m = d.take(T0 + MIN);
  assert.ok(m);
  assert.doesNotMatch(m.subject, /[\r\n]/);
  assert.doesNotMatch(m.text, /^X-Evil|^Subject:|^Bcc:/m);
});

test('bad urgent rules are refused with a config error', () => {
  const bad = (rule: object): void =>
    assert.throws(
      () => new DigestBuilder({ intervalMs: MIN, urgent: [rule] }),
      (e: unknown) => e instanceof SentryError && e.code === 'CONFIG',
    );
  bad({});
  bad({ cidr: '10.0.0.0/33' });
  bad({ port: 70000 });
  bad({ kind: 'explode' });
  assert.throws(() => new DigestBuilder({ intervalMs: 0 }), SentryError);
});

test('the digest names the destinations probed, in text and JSON', () => {
  const d = new DigestBuilder({ intervalMs: MIN, host: 'gw1' });
  for (let i = 0; i < 3; i++) d.add({ ...alert(`198.18.1.${i}`, T0), destination: '198.19.0.99' }, T0);
  d.add({ ...alert('198.18.1.9', T0), destination: '198.18.0.1' }, T0);
  const m = d.take(T0 + MIN)!;
  assert.match(m.text, /^Top destinations probed:\n {2}198\.19\.0\.99 +3\n {2}198\.18\.0\.1 +1$/m);
  assert.deepEqual((m.json as { top_destinations: unknown }).top_destinations, [
    { destination: '198.19.0.99', alerts: 3 },
    { destination: '198.18.0.1', alerts: 1 },
  ]);
});
