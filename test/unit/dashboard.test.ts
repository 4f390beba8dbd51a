import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { PACKAGE_ROOT } from '../../src/adapters/kernel.js';
import { Metrics } from '../../src/adapters/metrics.js';
import { realisticSnapshot } from '../helpers/metrics-fixture.js';

const DASHBOARD = join(PACKAGE_ROOT, 'packaging', 'grafana-dashboard.json');

interface Panel {
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads. Good enough for dashboard queries: strings, label
 * matchers, durations, grouping clauses, variables and numbers go first; what remains is either a
 * function (followed by "("), a keyword, or a metric name.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** Every PromQL expression in the dashboard (panel targets, also inside rows, and query variables). */
function expressions(d: { panels: Panel[]; templating: { list: Array<{ type: string; query?: unknown }> } }): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  const walk = (ps: readonly Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: p.title ?? p.type, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    const inner = q && /^label_values\((.*),\s*\w+\)$/.exec(q)?.[1];
    if (inner) out.push({ where: `variable query ${q}`, expr: inner });
  }
  return out;
}

async function exported(): Promise<{ types: Map<string, string>; samples: Set<string> }> {
  const m = new Metrics({ port: 0, registry: new Registry() });
  m.update(realisticSnapshot(2));
  const text = await m.registry.metrics();
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1]!, x[2]!]));
  const samples = new Set(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => /^[^{ ]+/.exec(l)![0]),
  );
  return { types, samples };
}

test('metricNames reads the names out of PromQL', () => {
  assert.deepEqual(metricNames('sum by (verdict) (rate(sentry_xdp_packets_total{instance=~"$instance"}[$__rate_interval]))'), ['sentry_xdp_packets_total']);
  assert.deepEqual(metricNames('max by (map) (sentry_xdp_map_entries{a="b{c}"} / sentry_xdp_map_max_entries) > 0.9 and on (instance) up'), [
    'sentry_xdp_map_entries',
    'sentry_xdp_map_max_entries',
    'up',
  ]);
  assert.deepEqual(metricNames('topk(15, sum by (proto, port) (increase(x_total[$__range])))'), ['x_total']);
});

test('the Grafana dashboard only queries metrics the endpoint exports, each as its type allows', async () => {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: Panel[];
    templating: { list: Array<{ name: string; type: string; query?: unknown }> };
    schemaVersion: number;
    uid: string;
  };
  const { types, samples } = await exported();
  const exprs = expressions(d);
  assert.ok(exprs.length >= 25, `the dashboard has ${exprs.length} queries`);
  const queried = new Set<string>();
  for (const { where, expr } of exprs) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
    for (const n of names) {
      queried.add(n);
      assert.ok(samples.has(n), `${where}: ${n} is not exported (${expr})`);
    }
    // rate() and increase() only on counters; a gauge never through them
    for (const m of expr.matchAll(/\b(rate|increase|irate)\(\s*([a-zA-Z_:][\w:]*)/g)) {
      assert.equal(types.get(m[2]!), 'counter', `${where}: ${m[1]}() of ${m[2]}, a ${types.get(m[2]!)}`);
    }
  }
  // what the dashboard is for: every area of the brief has its panel
  for (const n of [
    'sentry_xdp_packets_total',
    'sentry_xdp_packets_passed_total',
    'sentry_xdp_evasion_fragments_dropped_total',
    'sentry_xdp_probes_total',
    'sentry_xdp_probes_by_port_total',
    'sentry_xdp_alerts_total',
    'sentry_xdp_bans_in_force',
    'sentry_xdp_bans_added_total',
    'sentry_xdp_ringbuf_lost_events_total',
    'sentry_xdp_history_store_healthy',
    'sentry_xdp_nft_healthy',
    'sentry_xdp_flood_bans_deferred_total',
    'sentry_xdp_alerts_summarised_total',
    'sentry_xdp_build_info',
  ]) {
    assert.ok(queried.has(n), `no panel shows ${n}`);
  }
});

test('the dashboard imports into Grafana 10+: datasource variable, panel ids and layout', () => {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: Panel[] & Array<{ id: number; gridPos: { x: number; y: number; w: number; h: number } }>;
    templating: { list: Array<{ name: string; type: string; query?: unknown }> };
    schemaVersion: number;
    uid: string;
    id: unknown;
  };
  assert.ok(d.schemaVersion >= 36, 'Grafana 10 schema');
  assert.equal(d.id, null, 'no database id: Grafana assigns one on import');
  assert.match(d.uid, /^[\w-]{1,40}$/);
  const ds = d.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
  assert.equal(ds?.type, 'datasource');
  assert.equal(ds?.query, 'prometheus');
  const ids = new Set<number>();
  for (const p of d.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} twice`);
    ids.add(p.id);
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: wider than the grid`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: datasource`);
    for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: target datasource`);
  }
});
