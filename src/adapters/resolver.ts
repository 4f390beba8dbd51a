/**
 * RESOLVE_HOST: reverse DNS for alert lines, never on the hot path. A name is
 * used once it is in the cache; the first alert of a source shows its address
 * and starts a lookup (2 s timeout, one try). Names are kept for an hour,
 * failures for five minutes; the cache is bounded. The first PTR name that is
 * a valid host name is taken (src/core/text.ts hostName); the rest are the
 * attacker's text and are dropped.
 */
import { Resolver } from 'node:dns/promises';
import { hostName } from '../core/text.js';

export class NameCache {
  private readonly cache = new Map<string, { name: string | null; until: number }>();
  private readonly pending = new Set<string>();
  private readonly resolver = new Resolver({ timeout: 2000, tries: 1 });

  constructor(private readonly max = 10_000) {}

  /** The cached name of ip, if any; starts a lookup otherwise. */
  name(ip: string): string | undefined {
    const now = Date.now();
    const hit = this.cache.get(ip);
    if (hit && hit.until > now) return hit.name ?? undefined;
    if (!this.pending.has(ip) && this.pending.size < 64) {
      this.pending.add(ip);
      this.resolver
        .reverse(ip)
        .then((names) => {
          const name = firstHostName(names);
          this.put(ip, name ?? null, name ? 3_600_000 : 300_000);
        })
        .catch(() => this.put(ip, null, 300_000))
        .finally(() => this.pending.delete(ip));
    }
    return undefined;
  }

  private put(ip: string, name: string | null, ttl: number): void {
    this.cache.delete(ip);
    this.cache.set(ip, { name, until: Date.now() + ttl });
    if (this.cache.size > this.max) this.cache.delete(this.cache.keys().next().value!);
  }

  close(): void {
    this.resolver.cancel();
  }
}

/** The first name of a PTR answer that is a valid host name. */
export function firstHostName(names: readonly string[]): string | undefined {
  for (const n of names) {
    const h = hostName(n);
    if (h) return h;
  }
  return undefined;
}
