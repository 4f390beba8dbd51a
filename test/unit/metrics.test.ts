import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { Metrics, type MetricsSnapshot } from '../../src/adapters/metrics.js';
import { SentryError } from '../../src/errors.js';

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
      SEEN: BigInt(100 * n),
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
    assert.equal(value(t2, 'sentry_xdp_packets_seen_total'), 200);
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

test('odd values are skipped, never thrown on the daemon path', () => {
  const m = new Metrics({ port: 0, registry: new Registry(), processMetrics: false });
  const s = snapshot(1);
  s.kernel.PASSED = -5;
  s.kernel.DROPPED = Number.NaN;
  s.bansExpired = Number.POSITIVE_INFINITY;
  assert.doesNotThrow(() => m.update(s));
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
