/** What the Prometheus endpoint shows, read from the kernel and the daemon's totals. */
import { Layout } from '../core/abi.js';
import type { HistoryStore } from '../adapters/history.js';
import type { MetricsSnapshot } from '../adapters/metrics.js';
import type { RunDir } from '../adapters/run-dir.js';
import type { Gateway } from './gateway.js';

const MAPS: Record<string, number> = {
  sentry_bans_v4: 1_200_000,
  sentry_bans_v6: 262_144,
  sentry_ban_cidr_v4: 65_536,
  sentry_ban_cidr_v6: 65_536,
  sentry_allow_v4: 16_384,
  sentry_allow_v6: 16_384,
  sentry_sources: 131_072,
};
const ORIGINS = ['auto', 'manual', 'imported', 'fleet'];

let slow:
  | { at: number; inForce: Record<string, number>; fill: MetricsSnapshot['mapFill']; ports: NonNullable<MetricsSnapshot['probesByPort']> }
  | undefined;

/** Kernel counters every call; ban counts by origin and map fill at most every 10 s (they walk whole maps). */
export function metricsSnapshot(gw: Gateway, run: RunDir, history: HistoryStore): MetricsSnapshot {
  const now = Date.now();
  if (!slow || now - slow.at > 10_000) {
    const inForce: Record<string, number> = { auto: 0, manual: 0, imported: 0, fleet: 0 };
    const fill: MetricsSnapshot['mapFill'] = {};
    for (const [name, max] of Object.entries(MAPS)) {
      const m = gw.obj.map(name);
      if (name.startsWith('sentry_ban')) {
        const { total, counts } = m.histogram(Layout.sx_ban.fields.origin[0]);
        counts.forEach((n, code) => {
          if (!n) return;
          const origin = ORIGINS[code - 1] ?? 'manual';
          inForce[origin] = (inForce[origin] ?? 0) + n;
        });
        fill[name] = { entries: total, max };
      } else fill[name] = { entries: m.count(), max };
    }
    // probes per watched port (the kernel counts every port; the watched ones are the interesting ones)
    const w = run.readWatch();
    const ports: NonNullable<MetricsSnapshot['probesByPort']> = [];
    if (w) {
      const keys = [...w.tcp, ...w.udp.map((p) => 65536 + p)];
      gw.obj.readPercpu('sentry_port_probes', keys).forEach((count, i) => {
        const k = keys[i]!;
        if (count > 0n) ports.push({ proto: k >= 65536 ? 'udp' : 'tcp', port: k & 0xffff, count });
      });
    }
    slow = { at: now, inForce, fill, ports };
  }
  const stats = gw.stats();
  const d = (run.readDaemonStats() ?? {}) as { bansExpired?: number; alertsByDestination?: Record<string, number>; hooks?: MetricsSnapshot['hooks'] };
  return {
    kernel: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k.toLowerCase(), v])),
    bansInForce: slow.inForce,
    probesByPort: slow.ports,
    alertsByDestination: d.alertsByDestination ?? {},
    bansAdded: { auto: stats.BANS_ADDED ?? 0n },
    bansExpired: d.bansExpired ?? 0,
    mapFill: slow.fill,
    historyStore: history.health(),
    ...(d.hooks ? { hooks: d.hooks } : {}),
  };
}
