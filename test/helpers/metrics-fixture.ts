/** A snapshot shaped like the daemon's (metricsSnapshot), for the metrics and dashboard tests. */
import { ABI_VERSION, Stat, type StatName } from '../../src/core/abi.js';
import type { MetricsSnapshot } from '../../src/adapters/metrics.js';

/**
 * Every kernel counter, by the upper-case name Gateway.stats() gives, as bigints; counter i holds
 * n * (1000 + i), so each value is distinct and grows with n.
 */
function kernelCounters(n: number): Record<StatName, bigint> {
  return Object.fromEntries(Object.entries(Stat).map(([name, i]) => [name, BigInt(n * (1000 + i))])) as Record<StatName, bigint>;
}

export function realisticSnapshot(n = 1): MetricsSnapshot {
  return {
    kernel: kernelCounters(n),
    probesByPort: [
      { proto: 'tcp', port: 22, count: 7n * BigInt(n) },
      { proto: 'tcp', port: 111, count: 3n * BigInt(n) },
      { proto: 'udp', port: 161, count: 2n * BigInt(n) },
      { proto: 'tcp', port: 'other', count: 40n * BigInt(n) },
    ],
    alertsByDestination: { '198.18.0.1': 2 * n, '198.19.1.0/24': n },
    bansInForce: { auto: 12 * n, manual: 1, imported: 300, fleet: 2 },
    bansAdded: { auto: BigInt(1013 * n), manual: n, imported: 300, fleet: 2 * n },
    bansExpired: 4 * n,
    mapFill: {
      sentry_bans_v4: { entries: 315 * n, max: 1_200_000 },
      sentry_bans_v6: { entries: 0, max: 262_144 },
      sentry_sources: { entries: 40 * n, max: 131_072 },
    },
    historyStore: { kind: 'journal', healthy: true, buffered: 0, lost: 0 },
    hooks: { started: 2 * n, ok: 2 * n - 1, failed: 1, timedOut: 0, dropped: 0 },
    nft: { table: 'sentry_xdp', healthy: true },
    build: { version: '0.1.0', abi: ABI_VERSION, program: 'sentry+frags' },
  };
}
