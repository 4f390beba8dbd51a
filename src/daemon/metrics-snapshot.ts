/** What the Prometheus endpoint shows, read from the kernel and the daemon's totals. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ABI_VERSION, FEAT_CONNTRACK, FEAT_FRAGS, Layout, ORIGIN_NAME } from '../core/abi.js';
import type { HistoryStore } from '../adapters/history.js';
import { MapSize } from '../core/abi.js';
import { PACKAGE_ROOT } from '../adapters/kernel.js';
import { PROBES_BY_PORT_MAX, type MetricsSnapshot } from '../adapters/metrics.js';
import type { RunDir } from '../adapters/run-dir.js';
import type { Gateway } from './gateway.js';

const MAPS: Record<string, number> = {
  sentry_bans_v4: MapSize.bansV4,
  sentry_bans_v6: MapSize.bansV6,
  sentry_ban_cidr_v4: MapSize.cidrBans,
  sentry_ban_cidr_v6: MapSize.cidrBans,
  sentry_allow_v4: MapSize.allow,
  sentry_allow_v6: MapSize.allow,
  sentry_sources: MapSize.sources,
};
/** Origins whose bans the CLI makes, in another process: the daemon sees them only in the kernel table. */
const CLI_ORIGINS = ['manual', 'imported'] as const;
const SLOW_MS = 10_000;

/** What the daemon process knows that the kernel does not tell. */
export interface DaemonCounts {
  /** Bans the daemon expired since it started, by origin (read in the same loop turn as the ban table: no sweep between). */
  expiredByOrigin?: Readonly<Record<string, number>>;
  /** Bans of other gateways the daemon applied since it started. */
  fleetAdded?: number;
  /** The nft table, when nft is on, and whether its sets are in step. */
  nft?: { table: string; healthy: boolean } | undefined;
}

/**
 * Bans the CLI added (manual, imported), counted from outside: between two samples of the ban table,
 * the growth of bans in force of an origin plus those of that origin the daemon expired meanwhile.
 * A CLI unban in the same interval hides as many additions; a replaced ban of the same origin is no
 * growth. Never decreases: an interval that looks negative counts nothing.
 */
export class CliBanCounter {
  private last: { inForce: Record<string, number>; expired: Record<string, number> } | undefined;
  readonly added: Record<string, number> = Object.fromEntries(CLI_ORIGINS.map((o) => [o, 0]));

  /** Takes one sample; the first one is the baseline (what was there before the daemon started is not counted). */
  sample(inForce: Readonly<Record<string, number>>, expired: Readonly<Record<string, number>> = {}): Record<string, number> {
    const now = { inForce: { ...inForce }, expired: { ...expired } };
    if (this.last) {
      for (const o of CLI_ORIGINS) {
        const grew = (now.inForce[o] ?? 0) - (this.last.inForce[o] ?? 0) + ((now.expired[o] ?? 0) - (this.last.expired[o] ?? 0));
        if (grew > 0) this.added[o]! += grew;
      }
    }
    this.last = now;
    return { ...this.added };
  }
}

/**
 * Which ports get a series of their own in probes_by_port_total: the first PROBES_BY_PORT_MAX ports
 * seen probed (the most probed first when more arrive at once), kept for the daemon's life; every
 * other port is summed under "other". A port enters the set only the first time it is seen probed,
 * so no count ever moves out of "other" and each series only grows (the kernel's counts do). The
 * last count of every port is remembered, so a port that stops being watched keeps its share.
 */
export class PortSeries {
  private readonly named = new Set<number>();
  private readonly last = new Map<number, bigint>();

  constructor(private readonly max = PROBES_BY_PORT_MAX) {}

  /** keys: port for TCP, 65536 + port for UDP; counts: the kernel's totals for them. */
  take(keys: readonly number[], counts: readonly bigint[]): NonNullable<MetricsSnapshot['probesByPort']> {
    const fresh: Array<{ key: number; count: bigint }> = [];
    keys.forEach((key, i) => {
      const count = counts[i] ?? 0n;
      if (count <= 0n) return;
      if (!this.last.has(key) && !this.named.has(key)) fresh.push({ key, count });
      this.last.set(key, count);
    });
    fresh.sort((a, b) => (a.count === b.count ? a.key - b.key : a.count > b.count ? -1 : 1));
    for (const f of fresh) if (this.named.size < this.max) this.named.add(f.key);
    const out: NonNullable<MetricsSnapshot['probesByPort']> = [];
    const other = { tcp: 0n, udp: 0n };
    for (const [key, count] of this.last) {
      const proto = key >= 65536 ? 'udp' : 'tcp';
      if (this.named.has(key)) out.push({ proto, port: key & 0xffff, count });
      else other[proto] += count;
    }
    out.sort((a, b) => (a.proto === b.proto ? Number(a.port) - Number(b.port) : a.proto < b.proto ? -1 : 1));
    for (const proto of ['tcp', 'udp'] as const) if (other[proto] > 0n) out.push({ proto, port: 'other', count: other[proto] });
    return out;
  }
}

/** The BPF object loaded, as build_info names it. */
export function programName(features: number): string {
  return `${features & FEAT_CONNTRACK ? 'sentry' : 'sentry_noct'}${features & FEAT_FRAGS ? '+frags' : ''}`;
}

let version: string | undefined;
function packageVersion(): string {
  try {
    version ??= (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    version = 'unknown';
  }
  return version;
}

let slow:
  | {
      at: number;
      inForce: Record<string, number>;
      cliAdded: Record<string, number>;
      fill: MetricsSnapshot['mapFill'];
      ports: NonNullable<MetricsSnapshot['probesByPort']>;
    }
  | undefined;
const cliBans = new CliBanCounter();
const portSeries = new PortSeries();

/** Kernel counters every call; ban counts by origin, map fill and probes by port at most every 10 s (they walk whole maps). */
export function metricsSnapshot(gw: Gateway, run: RunDir, history: HistoryStore, daemon: DaemonCounts = {}): MetricsSnapshot {
  const now = Date.now();
  if (!slow || now - slow.at > SLOW_MS) {
    const inForce: Record<string, number> = { auto: 0, manual: 0, imported: 0, fleet: 0 };
    const fill: MetricsSnapshot['mapFill'] = {};
    for (const [name, max] of Object.entries(MAPS)) {
      const m = gw.obj.map(name);
      if (name.startsWith('sentry_ban')) {
        const { total, counts } = m.histogram(Layout.sx_ban.fields.origin[0]);
        counts.forEach((n, code) => {
          if (!n) return;
          const origin = ORIGIN_NAME[code] ?? 'manual';
          inForce[origin] = (inForce[origin] ?? 0) + n;
        });
        fill[name] = { entries: total, max };
      } else fill[name] = { entries: m.count(), max };
    }
    const cliAdded = cliBans.sample(inForce, daemon.expiredByOrigin);
    // probes per watched port (the kernel counts every port; the watched ones are the interesting ones)
    const w = run.readWatch();
    const keys = w ? [...w.tcp, ...w.udp.map((p) => 65536 + p)] : [];
    const ports = portSeries.take(keys, keys.length ? gw.obj.readPercpu('sentry_port_probes', keys) : []);
    slow = { at: now, inForce, cliAdded, fill, ports };
  }
  const stats = gw.stats();
  const d = (run.readDaemonStats() ?? {}) as { bansExpired?: number; alertsByDestination?: Record<string, number>; hooks?: MetricsSnapshot['hooks'] };
  return {
    kernel: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k.toLowerCase(), v])),
    bansInForce: slow.inForce,
    probesByPort: slow.ports,
    alertsByDestination: d.alertsByDestination ?? {},
    bansAdded: { auto: stats.BANS_ADDED ?? 0n, ...slow.cliAdded, fleet: daemon.fleetAdded ?? 0 },
    bansExpired: d.bansExpired ?? 0,
    mapFill: slow.fill,
    historyStore: history.health(),
    ...(d.hooks ? { hooks: d.hooks } : {}),
    ...(daemon.nft ? { nft: daemon.nft } : {}),
    build: { version: packageVersion(), abi: ABI_VERSION, program: programName(gw.features()) },
  };
}
