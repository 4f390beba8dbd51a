/**
 * Ban policy, pure: how long a ban lasts (per-CIDR rules, escalation for
 * repeat offenders) and who is never banned.
 */
import type { Cidr } from './addr.js';
import { MAX_DURATION_S } from './ttl.js';

/** True when `net` contains `addr` (same family, addr at least as specific). */
export function contains(net: Cidr, addr: Cidr): boolean {
  if (net.family !== addr.family || net.prefix > addr.prefix) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (net.bytes[i] !== addr.bytes[i]) return false;
  const rest = net.prefix & 7;
  if (!rest) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((net.bytes[full]! ^ addr.bytes[full]!) & mask) === 0;
}

export interface TtlRule {
  net: Cidr;
  ttl: number; // seconds, 0 = permanent
}

/** The most specific rule containing `target`, else the default. */
export function ttlFor(target: Cidr, rules: readonly TtlRule[], defaultTtl: number): number {
  let best: TtlRule | undefined;
  for (const r of rules) if (contains(r.net, target) && (!best || r.net.prefix > best.net.prefix)) best = r;
  return best ? best.ttl : defaultTtl;
}

export interface Escalation {
  enabled: boolean;
  factor: number;
  max: number; // seconds, 0 = no maximum (permanent allowed)
  lookback: number; // seconds
}

/**
 * The ban length for the n-th offence (n = 1 for the first) within the
 * look-back period: base * factor^(n-1), capped at max. A permanent base stays
 * permanent.
 */
export function escalate(base: number, n: number, e: Escalation): number {
  if (base === 0 || !e.enabled || n <= 1) return base;
  // "no maximum" still stops at the longest duration the kernel's expiry is computed for
  const raw = Math.min(base * Math.pow(e.factor, n - 1), MAX_DURATION_S);
  return Math.round(e.max > 0 ? Math.min(raw, Math.max(e.max, base)) : raw);
}

/**
 * Offence counts per source within a look-back window, bounded in size (the
 * oldest sources are forgotten first). Times are milliseconds.
 */
export class OffenceTracker {
  private readonly seen = new Map<string, number[]>();

  constructor(
    private readonly lookbackMs: number,
    private readonly maxSources = 100_000,
  ) {}

  /** Records an offence at `now`; returns its number within the look-back (1 = first). */
  record(source: string, now: number): number {
    const times = (this.seen.get(source) ?? []).filter((t) => now - t <= this.lookbackMs);
    times.push(now);
    this.seen.delete(source); // re-insert: Map order is recency
    this.seen.set(source, times);
    if (this.seen.size > this.maxSources) this.seen.delete(this.seen.keys().next().value!);
    return times.length;
  }

  /** The offences of `source` still within the look-back at `now`, oldest first. */
  recent(source: string, now: number): number[] {
    return (this.seen.get(source) ?? []).filter((t) => now - t <= this.lookbackMs).sort((a, b) => a - b);
  }

  /** Every source with offences on record. */
  sources(): string[] {
    return [...this.seen.keys()];
  }

  get lookback(): number {
    return this.lookbackMs;
  }

  /** Loads past offences (from history) without counting a new one. */
  seed(source: string, when: number): void {
    const times = this.seen.get(source) ?? [];
    times.push(when);
    this.seen.set(source, times);
  }
}
