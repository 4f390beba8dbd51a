import assert from 'node:assert/strict';
import { test } from 'node:test';
import { camelKey, camelKeys, historyJson, JSON_FORMAT_VERSION, topJson } from '../../src/core/json-format.js';
import { topReport } from '../../src/core/history-report.js';
import { Kind } from '../../src/core/scan-kind.js';
import type { Alert } from '../../src/core/log-format.js';
import { makeReporter } from '../../src/daemon/daemon.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Every key in the value, at any depth. */
function keys(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) keys(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      keys(x, out);
    }
  }
  return out;
}
const camel = (k: string) => /^[a-z][a-zA-Z0-9]*$/.test(k);

test('keys become camelCase; camelCase ones stay', () => {
  assert.equal(camelKey('possibly_spoofed'), 'possiblySpoofed');
  assert.equal(camelKey('BANS_ADDED'), 'bansAdded');
  assert.equal(camelKey('RB_LOST'), 'rbLost');
  assert.equal(camelKey('PROBE_V6CHAIN'), 'probeV6chain');
  assert.equal(camelKey('V6_CHAIN_LONG'), 'v6ChainLong');
  assert.equal(camelKey('SERVICE'), 'service');
  assert.equal(camelKey('bansInForce'), 'bansInForce');
  assert.equal(camelKey('seen'), 'seen');
  assert.deepEqual(camelKeys({ ttl_seconds: 1, '198.18.0.1': 2 }), { ttlSeconds: 1, '198.18.0.1': 2 });
});

const alert: Alert = {
  time: new Date('2026-11-22T02:34:22.964Z'),
  source: '198.18.0.2',
  destination: '198.18.0.1',
  proto: 'tcp',
  port: 79,
  kind: Kind.SYN,
  tcpFlags: 0x02,
  iface: 'sxgw0',
  probes: 1,
  banned: true,
  banFailed: false,
  possiblySpoofed: false,
  banSeconds: 600,
  expires: new Date('2026-11-22T02:44:22.964Z'),
};

test("the daemon's --json lines (NDJSON): one object a line, camelCase keys, ISO times, also for the loop's notices", () => {
  const lines: string[] = [];
  const r = makeReporter(
    true,
    (l) => lines.push(l),
    () => new Date('2026-11-22T02:34:23.000Z'),
  );
  r.alert(alert);
  r.unban('198.18.0.2', 'ban expired');
  r.info('started');
  r.emit({ type: 'not_blocked', time: new Date('2026-11-22T02:34:23.000Z'), source: '198.18.0.53', destination: '198.18.0.1', reason: 'live-connection' });
  assert.equal(lines.length, 5);
  const evs = lines.map((l) => {
    assert.ok(!l.includes('\n'));
    return JSON.parse(l) as Record<string, unknown>;
  });
  assert.deepEqual(
    evs.map((e) => e.event),
    ['alert', 'ban', 'unban', 'info', 'not_blocked'],
  );
  for (const e of evs) {
    assert.match(String(e.time), ISO);
    for (const k of keys(e)) assert.ok(camel(k), `${k} in ${JSON.stringify(e)}`);
  }
  assert.equal(evs[0]!.possiblySpoofed, false);
  assert.equal(evs[1]!.ttlSeconds, 600);
  assert.equal(evs[1]!.expires, '2026-11-22T02:44:22.964Z');
  assert.equal(evs[4]!.possiblySpoofed, true);
});

test('history --json lines: event first, ISO times, ttlSeconds', () => {
  const t = Date.parse('2026-11-22T02:34:22.964Z');
  const ban = historyJson({ op: 'ban', time: t, target: '203.0.113.7', ttl: 600, expires: t + 600_000, origin: 'manual', reason: 'abuse', by: 'root@vm' });
  assert.deepEqual(ban, {
    time: '2026-11-22T02:34:22.964Z',
    event: 'ban',
    target: '203.0.113.7',
    ttlSeconds: 600,
    expires: '2026-11-22T02:44:22.964Z',
    origin: 'manual',
    reason: 'abuse',
    by: 'root@vm',
  });
  assert.equal(historyJson({ op: 'ban', time: t, target: '203.0.113.7', ttl: 0, expires: null, origin: 'manual', reason: '', by: 'root' }).expires, null);
  const a = historyJson({
    op: 'alert',
    time: t,
    source: '198.18.0.2',
    destination: '198.18.0.1',
    proto: 'tcp',
    port: 79,
    kind: 'syn',
    flags: 'SYN',
    iface: 'eth0',
    gateway: 'vm',
  });
  assert.equal(a.event, 'alert');
  assert.equal(a.time, '2026-11-22T02:34:22.964Z');
  assert.equal(Object.keys(a)[0], 'time');
  const u = historyJson({ op: 'unban', time: t, target: '203.0.113.7', why: 'unbanned by hand', by: 'root' });
  assert.deepEqual(Object.keys(u), ['time', 'event', 'target', 'why', 'by']);
});

test('every counter of the kernel gets a camelCase name in status', async () => {
  const { Stat } = await import('../../src/core/abi.js');
  const names = ['SEEN', ...Object.keys(Stat)].map(camelKey);
  for (const n of names) assert.ok(camel(n), n);
  assert.equal(new Set(names).size, names.length, 'no two counters share a name');
  for (const n of ['probeSyn', 'rbLost', 'bansAdded', 'livePeer', 'nonIp', 'service', 'conntrack', 'unparsed', 'notProtected']) assert.ok(names.includes(n), n);
});

test('top --json: a document with its version, the period start as an ISO time, camelCase keys', () => {
  const t = Date.parse('2026-11-22T02:34:22.964Z');
  const j = topJson(
    topReport([{ op: 'alert', time: t, source: '198.18.0.2', proto: 'tcp', port: 79, kind: 'syn', iface: 'eth0', gateway: 'vm' }], t - 3_600_000),
  );
  assert.equal(j.version, JSON_FORMAT_VERSION);
  assert.equal(j.since, '2026-11-22T01:34:22.964Z');
  assert.equal(j.alerts, 1);
  for (const k of keys(j)) assert.ok(camel(k), k);
});

test('status health: down without a daemon (exit 3), degraded on a waiting interface, nft out of step or history down (exit 1), else ok (exit 0)', async () => {
  const { healthOf, STATUS_EXIT } = await import('../../src/daemon/commands.js');
  const up = { name: 'eth0', ifindex: 2, progId: 7, mode: 'native', stale: false, state: 'attached' as const };
  const waiting = { name: 'ppp0', ifindex: 0, progId: 0, mode: '-', stale: false, state: 'waiting' as const, reason: 'no such interface' };
  const fine = { nftHealthy: true, history: { kind: 'redis', healthy: true } };
  assert.deepEqual(healthOf(null, [up], null), { health: 'down', problems: ['no daemon is running (the kernel still enforces the bans it holds)'] });
  assert.deepEqual(healthOf(42, [up], fine), { health: 'ok', problems: [] });
  assert.deepEqual(healthOf(42, [up], null), { health: 'ok', problems: [] }, 'a daemon that has not written its totals yet');
  assert.deepEqual(healthOf(42, [up], { nftHealthy: null }), { health: 'ok', problems: [] }, 'nft off');
  assert.deepEqual(healthOf(42, [up, waiting], fine).problems, ['ppp0: waiting (no such interface)']);
  assert.equal(healthOf(42, [up], { ...fine, nftHealthy: false }).health, 'degraded');
  assert.deepEqual(healthOf(42, [up], { nftHealthy: true, history: { kind: 'redis', healthy: false, error: 'ECONNREFUSED' } }).problems, [
    'history: the redis store is down (ECONNREFUSED)',
  ]);
  assert.deepEqual(STATUS_EXIT, { ok: 0, degraded: 1, down: 3 });
});

test('README\'s "JSON output" examples are JSON with camelCase keys, ISO times and a version on documents', async () => {
  const { readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const section = readme.slice(readme.indexOf('\n## JSON output\n'), readme.indexOf('\n## ', readme.indexOf('\n## JSON output\n') + 5));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 5, `${blocks.length} examples`);
  for (const b of blocks) {
    let docs: unknown[];
    try {
      docs = [JSON.parse(b)];
    } catch {
      docs = b
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown);
    }
    for (const d of docs) {
      const o = d as Record<string, unknown>;
      for (const k of keys(o)) assert.ok(camel(k) || /^\d/.test(k), `${k} in ${b}`);
      assert.ok(
        'version' in o ? o.version === JSON_FORMAT_VERSION : typeof o.event === 'string',
        `a document with a version, or a stream line with an event: ${JSON.stringify(o)}`,
      );
      if ('time' in o) assert.match(String(o.time), ISO);
    }
  }
});
