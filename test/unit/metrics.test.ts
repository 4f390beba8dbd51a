import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { Metrics, PROBES_BY_PORT_MAX, type MetricsSnapshot } from '../../src/adapters/metrics.js';
import { ABI_VERSION, FEAT_CONNTRACK, FEAT_FRAGS, Stat } from '../../src/core/abi.js';
import { CliBanCounter, PortSeries, programName } from '../../src/daemon/metrics-snapshot.js';
import { SentryError } from '../../src/errors.js';
import { realisticSnapshot } from '../helpers/metrics-fixture.js';

/** The value of one sample line, e.g. value(text, 'sentry_xdp_probes_total{kind="syn"}'). */
function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function snapshot(n: number): MetricsSnapshot {
  return {
    // Upper-case names, as Gateway.stats() returns them; bigints as the kernel gives them.
    kernel: {
      PASSED: BigInt(90 * n),
      DROPPED: BigInt(10 * n),
      PROBE_SYN: BigInt(3 * n),
      PROBE_FIN: 0n,
      PROBE_NULL: 0n,
      PROBE_XMAS: BigInt(n),
      PROBE_UNKNOWN: 0n,
      PROBE_UDP: BigInt(2 * n),
      ALERTS: BigInt(n),
      BANS_ADDED: BigInt(n),
      RB_LOST: 0n,
      UNPARSED: 0n,
      NON_IP: 5n,
      FRAGMENTS: 0n,
      ALLOWED: 7n,
      BAN_TABLE_FULL: 0n,
      BAN_CAPPED: 0n,
      NEVER_BAN: 0n,
      LOCAL_SOCKET: 1n,
      SOMETHING_NEW: BigInt(n),
    },
    probesByPort: [
      { proto: 'tcp', port: 111, count: 3 * n },
      { proto: 'udp', port: 161, count: 2 * n },
    ],
    bansInForce: { auto: n, manual: 1, imported: 0, fleet: 2 },
    bansAdded: { auto: n, manual: 1, imported: 0, fleet: 2 },
    bansExpired: n - 1,
    mapFill: { sentry_bans_v4: { entries: 3 + n, max: 65536 }, sentry_src_state: { entries: 40 * n, max: 131072 } },
    historyStore: { kind: 'journal', healthy: n === 1, buffered: 0, lost: 0 },
    hooks: { started: 2 * n, ok: 2 * n - 1, failed: 1, timedOut: 0, dropped: 0 },
  };
}

test('/metrics on loopback: HELP and TYPE lines, values follow update(), other paths 404, clean stop', async () => {
  const m = new Metrics({ host: '127.0.0.1', port: 0, registry: new Registry() });
  const { url } = await m.start();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  try {
    m.update(snapshot(1));
    const r1 = await fetch(url);
    assert.equal(r1.status, 200);
    assert.match(r1.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const t1 = await r1.text();

    for (const [name, type] of [
      ['sentry_xdp_packets_total', 'counter'],
      ['sentry_xdp_probes_total', 'counter'],
      ['sentry_xdp_alerts_total', 'counter'],
      ['sentry_xdp_bans_in_force', 'gauge'],
      ['sentry_xdp_bans_added_total', 'counter'],
      ['sentry_xdp_bans_expired_total', 'counter'],
      ['sentry_xdp_map_entries', 'gauge'],
      ['sentry_xdp_map_max_entries', 'gauge'],
      ['sentry_xdp_history_store_healthy', 'gauge'],
      ['sentry_xdp_hook_results_total', 'counter'],
      ['sentry_xdp_ringbuf_lost_events_total', 'counter'],
    ] as const) {
      assert.match(t1, new RegExp(`^# HELP ${name} \\S.*$`, 'm'), `HELP for ${name}`);
      assert.match(t1, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `TYPE ${type} for ${name}`);
    }
    // Every sentry_xdp_ family has a HELP text.
    const families = new Set([...t1.matchAll(/^# TYPE (sentry_xdp_\w+) /gm)].map((x) => x[1]));
    assert.ok(families.size >= 25, `expected the whole set of families, got ${families.size}`);
    for (const f of families) assert.match(t1, new RegExp(`^# HELP ${f} \\S`, 'm'));

    assert.equal(value(t1, 'sentry_xdp_packets_total{verdict="pass"}'), 90);
    assert.equal(value(t1, 'sentry_xdp_packets_total{verdict="drop"}'), 10);
    assert.equal(value(t1, 'sentry_xdp_probes_total{kind="syn"}'), 3);
    assert.equal(value(t1, 'sentry_xdp_probes_total{kind="udp"}'), 2);
    assert.equal(value(t1, 'sentry_xdp_kernel_counter_total{counter="something_new"}'), 1);
    assert.equal(value(t1, 'sentry_xdp_probes_by_port_total{proto="tcp",port="111"}'), 3);
    assert.equal(value(t1, 'sentry_xdp_bans_in_force{origin="fleet"}'), 2);
    assert.equal(value(t1, 'sentry_xdp_bans_expired_total'), 0);
    assert.equal(value(t1, 'sentry_xdp_map_entries{map="sentry_bans_v4"}'), 4);
    assert.equal(value(t1, 'sentry_xdp_map_max_entries{map="sentry_src_state"}'), 131072);
    assert.equal(value(t1, 'sentry_xdp_history_store_healthy{kind="journal"}'), 1);
    assert.equal(value(t1, 'sentry_xdp_hook_results_total{result="ok"}'), 1);
    assert.ok((value(t1, 'sentry_xdp_last_update_timestamp_seconds') ?? 0) > 1.6e9);
    assert.ok(value(t1, 'process_resident_memory_bytes') !== undefined, 'process metrics are exported');

    m.update(snapshot(2));
    const t2 = await (await fetch(url)).text();
    assert.equal(value(t2, 'sentry_xdp_packets_total{verdict="pass"}'), 180);
    assert.equal(value(t2, 'sentry_xdp_packets_seen_total'), undefined, 'packets_seen_total is gone (it was sum(packets_total))');
    assert.equal(value(t2, 'sentry_xdp_packets_passed_total{reason="non_ip"}'), 5);
    assert.equal(value(t2, 'sentry_xdp_packets_passed_total{reason="allowed"}'), 7);
    assert.equal(value(t2, 'sentry_xdp_packets_passed_total{reason="local_socket"}'), 1);
    assert.equal(value(t2, 'sentry_xdp_probes_total{kind="syn"}'), 6);
    assert.equal(value(t2, 'sentry_xdp_probes_total{kind="xmas"}'), 2);
    assert.equal(value(t2, 'sentry_xdp_alerts_total'), 2);
    assert.equal(value(t2, 'sentry_xdp_kernel_bans_added_total'), 2);
    assert.equal(value(t2, 'sentry_xdp_probes_by_port_total{proto="udp",port="161"}'), 4);
    assert.equal(value(t2, 'sentry_xdp_bans_in_force{origin="auto"}'), 2);
    assert.equal(value(t2, 'sentry_xdp_bans_added_total{origin="auto"}'), 2);
    assert.equal(value(t2, 'sentry_xdp_bans_expired_total'), 1);
    assert.equal(value(t2, 'sentry_xdp_map_entries{map="sentry_src_state"}'), 80);
    assert.equal(value(t2, 'sentry_xdp_history_store_healthy{kind="journal"}'), 0);
    assert.equal(value(t2, 'sentry_xdp_hooks_started_total'), 4);
    assert.equal(value(t2, 'sentry_xdp_hook_results_total{result="ok"}'), 3);

    // Values are replaced, not added up: a third identical update changes nothing.
    m.update(snapshot(2));
    const t3 = await (await fetch(url)).text();
    assert.equal(value(t3, 'sentry_xdp_probes_total{kind="syn"}'), 6);

    // A series missing from the next snapshot disappears instead of keeping its old value.
    m.update({ ...snapshot(2), probesByPort: [], mapFill: {} });
    const t4 = await (await fetch(url)).text();
    assert.equal(value(t4, 'sentry_xdp_probes_by_port_total{proto="tcp",port="111"}'), undefined);
    assert.equal(value(t4, 'sentry_xdp_map_entries{map="sentry_bans_v4"}'), undefined);

    const other = new URL(url);
    for (const path of ['/', '/metricsx', '/metrics/extra', '/favicon.ico']) {
      other.pathname = path;
      const r = await fetch(other);
      assert.equal(r.status, 404, path);
      await r.text();
    }
    const post = await fetch(url, { method: 'POST' });
    assert.equal(post.status, 405);
    await post.text();
    const withQuery = await fetch(`${url}?x=1`);
    assert.equal(withQuery.status, 200);
    await withQuery.text();
  } finally {
    await m.stop();
  }

  // Stopped: nothing listens any more, and no server or socket handle is left behind.
  await assert.rejects(fetch(url));
  await new Promise((r) => setImmediate(r));
  const handles = process.getActiveResourcesInfo().filter((h) => /TCP|Server/i.test(h));
  assert.deepEqual(handles, []);
  await m.stop(); // a second stop is harmless
});

test('odd values are skipped, never thrown on the daemon path', async () => {
  const m = new Metrics({ port: 0, registry: new Registry(), processMetrics: false });
  const s = snapshot(1);
  s.kernel.PASSED = -5;
  s.kernel.DROPPED = Number.NaN;
  s.kernel.ALERTS = 2n ** 64n - 1n; // the largest u64: a big number, still a number
  s.bansExpired = Number.POSITIVE_INFINITY;
  s.bansInForce = { auto: Number.NaN, manual: 3 };
  s.bansAdded = { auto: -1, manual: 2 };
  s.probesByPort = [
    { proto: 'TCP', port: 111, count: -3 },
    { proto: 'UDP', port: 161, count: 4 },
  ];
  s.mapFill = { sentry_bans_v4: { entries: Number.NaN, max: 1_200_000 } };
  s.historyStore = { kind: 'redis', healthy: false, buffered: Number.NaN, lost: -1 };
  // a sane snapshot first: the odd one below must replace its values, not leave them standing
  m.update(snapshot(1));
  const good = await m.registry.metrics();
  assert.equal(value(good, 'sentry_xdp_packets_total{verdict="pass"}'), 90);
  assert.equal(value(good, 'sentry_xdp_bans_in_force{origin="auto"}'), 1);
  assert.equal(value(good, 'sentry_xdp_map_entries{map="sentry_bans_v4"}'), 4);
  m.update(s); // a throw here fails the test: the daemon path must survive odd values
  const t = await m.registry.metrics();
  // a negative or NaN counter is left out, not exported as a lie (nor the last good value kept)
  assert.equal(value(t, 'sentry_xdp_packets_total{verdict="pass"}'), undefined);
  assert.equal(value(t, 'sentry_xdp_packets_total{verdict="drop"}'), undefined);
  assert.ok((value(t, 'sentry_xdp_alerts_total') ?? 0) > 1.8e19);
  // an unlabelled counter stays at 0 rather than Infinity or NaN
  assert.equal(value(t, 'sentry_xdp_bans_expired_total'), 0);
  assert.equal(value(t, 'sentry_xdp_bans_in_force{origin="auto"}'), undefined);
  assert.equal(value(t, 'sentry_xdp_bans_in_force{origin="manual"}'), 3);
  assert.equal(value(t, 'sentry_xdp_bans_added_total{origin="auto"}'), undefined);
  assert.equal(value(t, 'sentry_xdp_bans_added_total{origin="manual"}'), 2);
  assert.equal(value(t, 'sentry_xdp_probes_by_port_total{proto="tcp",port="111"}'), undefined);
  assert.equal(value(t, 'sentry_xdp_probes_by_port_total{proto="udp",port="161"}'), 4, 'protocols are lower-cased');
  assert.equal(value(t, 'sentry_xdp_map_entries{map="sentry_bans_v4"}'), undefined);
  assert.equal(value(t, 'sentry_xdp_map_max_entries{map="sentry_bans_v4"}'), 1_200_000);
  assert.equal(value(t, 'sentry_xdp_history_store_healthy{kind="redis"}'), 0);
  assert.equal(value(t, 'sentry_xdp_history_store_buffered_events{kind="redis"}'), 0);
  assert.equal(value(t, 'sentry_xdp_history_store_lost_events_total{kind="redis"}'), 0);
  for (const line of t.split('\n')) {
    if (line.startsWith('sentry_xdp_')) assert.match(line, / \d+(\.\d+)?(e[+-]?\d+)?$/, `a finite, non-negative value: ${line}`);
  }
});

test('every kernel counter is in exactly one series; none falls back to kernel_counter_total', async () => {
  const m = new Metrics({ port: 0, registry: new Registry(), processMetrics: false });
  const s = realisticSnapshot(1);
  s.bansAdded = {}; // bans_added_total{origin="auto"} repeats BANS_ADDED by design; left out here
  m.update(s);
  const t = await m.registry.metrics();
  const samples = t.split('\n').filter((l) => l.startsWith('sentry_xdp_'));
  for (const [name, i] of Object.entries(Stat)) {
    const hits = samples.filter((l) => l.endsWith(` ${1000 + i}`));
    assert.equal(hits.length, 1, `${name}: ${hits.join(', ') || 'in no series'}`);
    assert.doesNotMatch(hits[0]!, /^sentry_xdp_kernel_counter_total/, `${name} has no dedicated metric`);
  }
  assert.doesNotMatch(t, /^sentry_xdp_kernel_counter_total\{/m);
});

test('pass reasons are one family, packets_passed_total{reason}; the old families are gone', async () => {
  const m = new Metrics({ port: 0, registry: new Registry(), processMetrics: false });
  m.update(realisticSnapshot(1));
  const t = await m.registry.metrics();
  const reasons = [...t.matchAll(/^sentry_xdp_packets_passed_total\{reason="(\w+)"\} (\d+)$/gm)].map((x) => [x[1], Number(x[2])]);
  assert.deepEqual(Object.fromEntries(reasons), {
    allowed: 1000 + Stat.ALLOWED,
    unparsed: 1000 + Stat.UNPARSED,
    non_ip: 1000 + Stat.NON_IP,
    fragment: 1000 + Stat.FRAGMENTS,
    not_protected: 1000 + Stat.NOT_PROTECTED,
    service: 1000 + Stat.SERVICE,
    local_socket: 1000 + Stat.LOCAL_SOCKET,
    conntrack: 1000 + Stat.CONNTRACK,
  });
  for (const gone of [
    'packets_seen_total',
    'unparsed_packets_total',
    'non_ip_packets_total',
    'fragments_passed_total',
    'allowed_packets_total',
    'local_socket_datagrams_total',
    'probe_shaped_passed_total',
  ]) {
    assert.doesNotMatch(t, new RegExp(`^# TYPE sentry_xdp_${gone} `, 'm'), gone);
  }
  assert.match(t, /^# TYPE sentry_xdp_packets_passed_total counter$/m);
  // kept: the flood counters
  assert.equal(value(t, 'sentry_xdp_flood_bans_deferred_total'), 1000 + Stat.BANS_DEFERRED);
  assert.equal(value(t, 'sentry_xdp_alerts_summarised_total'), 1000 + Stat.ALERTS_SUMMARISED);
});

test('build_info, nft state, bans added by every origin', async () => {
  const m = new Metrics({ port: 0, registry: new Registry(), processMetrics: false });
  m.update(realisticSnapshot(1));
  const t = await m.registry.metrics();
  assert.match(t, /^# TYPE sentry_xdp_build_info gauge$/m);
  assert.equal(value(t, `sentry_xdp_build_info{version="0.1.0",abi="${ABI_VERSION}",program="sentry+frags"}`), 1);
  assert.equal(value(t, 'sentry_xdp_nft_healthy{table="sentry_xdp"}'), 1);
  for (const [origin, n] of [
    ['auto', 1013],
    ['manual', 1],
    ['imported', 300],
    ['fleet', 2],
  ] as const) {
    assert.equal(value(t, `sentry_xdp_bans_added_total{origin="${origin}"}`), n, origin);
  }
  assert.match(t, /^# HELP sentry_xdp_bans_added_total .*manual, imported: .*10 s/m, 'HELP says how CLI bans are counted');

  // nft off: no series at all (not a 0 that would read as "failing")
  const { nft: _nft, build: _build, ...bare } = realisticSnapshot(1);
  m.update(bare);
  const t2 = await m.registry.metrics();
  assert.doesNotMatch(t2, /^sentry_xdp_nft_healthy/m);
  assert.doesNotMatch(t2, /^sentry_xdp_build_info/m);

  assert.equal(programName(FEAT_CONNTRACK | FEAT_FRAGS), 'sentry+frags');
  assert.equal(programName(FEAT_CONNTRACK), 'sentry');
  assert.equal(programName(FEAT_FRAGS), 'sentry_noct+frags');
  assert.equal(programName(0), 'sentry_noct');
});

test('probes_by_port_total is bounded: numbered ports up to the cap, the rest under port="other"', async () => {
  const m = new Metrics({ port: 0, registry: new Registry(), processMetrics: false });
  // the adapter's guard: 1000 numbered ports in, PROBES_BY_PORT_MAX out, the rest summed
  const many = Array.from({ length: 1000 }, (_, i) => ({ proto: i % 2 ? 'udp' : 'tcp', port: 1 + i, count: 1 }));
  m.update({ ...realisticSnapshot(1), probesByPort: [...many, { proto: 'tcp', port: 'other', count: 5 }] });
  const t = await m.registry.metrics();
  const series = t.split('\n').filter((l) => l.startsWith('sentry_xdp_probes_by_port_total{'));
  const numbered = series.filter((l) => !l.includes('port="other"'));
  assert.equal(numbered.length, PROBES_BY_PORT_MAX);
  assert.equal(value(t, 'sentry_xdp_probes_by_port_total{proto="tcp",port="other"}'), 5 + (1000 - PROBES_BY_PORT_MAX) / 2);
  assert.equal(value(t, 'sentry_xdp_probes_by_port_total{proto="udp",port="other"}'), (1000 - PROBES_BY_PORT_MAX) / 2);
  assert.match(t, new RegExp(`^# HELP sentry_xdp_probes_by_port_total .*${PROBES_BY_PORT_MAX}.*port="other"`, 'm'));
});

test('PortSeries: the first ports probed keep their series; the others sum into a counter that never goes down', () => {
  const ps = new PortSeries(3);
  const tcp = (p: number) => p;
  const udp = (p: number) => 65536 + p;
  const keys = [tcp(22), tcp(23), tcp(80), udp(53), udp(161)];
  // first sample: three ports probed, the most probed first; udp/161 not probed yet
  let out = ps.take(keys, [5n, 1n, 9n, 2n, 0n]);
  assert.deepEqual(out, [
    { proto: 'tcp', port: 22, count: 5n },
    { proto: 'tcp', port: 80, count: 9n },
    { proto: 'udp', port: 53, count: 2n },
    { proto: 'tcp', port: 'other', count: 1n },
  ]);
  // a new port once the set is full goes to "other", even if it is probed most
  out = ps.take(keys, [6n, 1n, 9n, 2n, 100n]);
  assert.deepEqual(out.at(-1), { proto: 'udp', port: 'other', count: 100n });
  assert.equal(out.length, 5);
  // a port no longer watched keeps its last count (no counter goes down)
  out = ps.take([tcp(22), tcp(80), udp(53), udp(161)], [7n, 9n, 2n, 101n]);
  assert.deepEqual(out, [
    { proto: 'tcp', port: 22, count: 7n },
    { proto: 'tcp', port: 80, count: 9n },
    { proto: 'udp', port: 53, count: 2n },
    { proto: 'tcp', port: 'other', count: 1n },
    { proto: 'udp', port: 'other', count: 101n },
  ]);
  // advanced mode, every port watched: still at most max + 2 series
  const big = new PortSeries();
  const all = Array.from({ length: 131072 }, (_, k) => k);
  const series = big.take(
    all,
    all.map((k) => BigInt(k % 7)),
  );
  assert.equal(series.length, PROBES_BY_PORT_MAX + 2);
});

test('CliBanCounter: manual and imported bans counted from the table growth plus the daemon expiries', () => {
  const c = new CliBanCounter();
  // baseline: what was banned before the daemon started is not counted
  assert.deepEqual(c.sample({ auto: 4, manual: 10, imported: 1000, fleet: 0 }, {}), { manual: 0, imported: 0 });
  // 3 manual bans made; 2 manual bans expired meanwhile (the table shows +1)
  assert.deepEqual(c.sample({ auto: 9, manual: 11, imported: 1000 }, { manual: 2 }), { manual: 3, imported: 0 });
  // an import of 500
  assert.deepEqual(c.sample({ manual: 11, imported: 1500 }, { manual: 2 }), { manual: 3, imported: 500 });
  // unban --all by the CLI: the table shrinks, nothing is counted, nothing goes down
  assert.deepEqual(c.sample({ manual: 0, imported: 0 }, { manual: 2 }), { manual: 3, imported: 500 });
  // and bans made after it are counted again
  assert.deepEqual(c.sample({ manual: 2, imported: 0 }, { manual: 3 }), { manual: 6, imported: 500 });
});

test('defaults to 127.0.0.1:9641; a busy port is one clear error', async () => {
  const d = new Metrics({ registry: new Registry(), processMetrics: false });
  assert.equal(d.host, '127.0.0.1');
  assert.equal(d.port, 9641);
  assert.throws(() => new Metrics({ port: 70000, registry: new Registry() }), SentryError);

  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen({ host: '127.0.0.1', port: 0 }, r));
  const port = (blocker.address() as { port: number }).port;
  try {
    const m = new Metrics({ host: '127.0.0.1', port, registry: new Registry(), processMetrics: false });
    await assert.rejects(m.start(), (e: unknown) => {
      assert.ok(e instanceof SentryError);
      assert.equal(e.code, 'IO');
      assert.match(e.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
      return true;
    });
    await m.stop();
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});

test('with a source, every scrape pulls a fresh snapshot; a failing source is a 500', async () => {
  let n = 0;
  let fail = false;
  const m = new Metrics({
    host: '127.0.0.1',
    port: 0,
    registry: new Registry(),
    processMetrics: false,
    source: () => {
      if (fail) throw new Error('reading counters: EBADF');
      n += 1;
      return snapshot(n);
    },
  });
  const { url } = await m.start();
  try {
    const a = await (await fetch(url)).text();
    const b = await (await fetch(url)).text();
    assert.equal(value(a, 'sentry_xdp_alerts_total'), 1);
    assert.equal(value(b, 'sentry_xdp_alerts_total'), 2);
    fail = true;
    const r = await fetch(url);
    assert.equal(r.status, 500);
    assert.match(await r.text(), /EBADF/);
  } finally {
    await m.stop();
  }
});

/** promtool, from PROMTOOL or the PATH (Debian package `prometheus`). */
function findPromtool(): string | undefined {
  for (const cand of [process.env.PROMTOOL, 'promtool'].filter((x): x is string => !!x)) {
    const r = spawnSync(cand, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return cand;
  }
  return undefined;
}

test('promtool check metrics accepts the rendered output', async (t) => {
  const promtool = findPromtool();
  if (!promtool) {
    const why = 'promtool not found (install Debian package `prometheus`, or set PROMTOOL=/path/to/promtool)';
    console.log(`# skipped: ${why}`);
    t.skip(why);
    return;
  }
  const m = new Metrics({ port: 0, registry: new Registry() });
  m.update(realisticSnapshot(3));
  const text = await m.registry.metrics();
  const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined);
  // prom-client's own nodejs_active_*_total gauges draw a lint warning that is not ours to fix; anything else fails
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim());
  const ours = problems.filter((l) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(l));
  assert.deepEqual(ours, [], `promtool check metrics (exit ${r.status}):\n${problems.join('\n')}`);
  assert.ok(r.status === 0 || ours.length < problems.length, `promtool exit ${r.status} with no problem printed`);
  // and the sentry_xdp_ families alone pass cleanly
  const own =
    text
      .split('\n')
      .filter((l) => /^(# (HELP|TYPE) )?sentry_xdp_/.test(l))
      .join('\n') + '\n';
  const r2 = spawnSync(promtool, ['check', 'metrics'], { input: own, encoding: 'utf8' });
  assert.equal(r2.status, 0, `promtool check metrics on sentry_xdp_ only:\n${r2.stdout}${r2.stderr}`);
});
