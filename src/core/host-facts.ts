/** Parsers for the host facts behind the automatic never-ban list. */

/** `nameserver` lines of resolv.conf. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1]!.replace(/%.*$/, '')); // drop an IPv6 zone index
  }
  return out;
}

/** Gateways of /proc/net/route (little-endian hex). */
export function parseRouteV4(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || f[2] === '00000000') continue;
    const n = parseInt(f[2]!, 16);
    if (!Number.isFinite(n)) continue;
    out.add([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.'));
  }
  return [...out];
}

/** Next hops of /proc/net/ipv6_route (32 hex digits, big-endian). */
export function parseRouteV6(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || /^0+$/.test(f[4]!)) continue;
    out.add(f[4]!.match(/.{4}/g)!.join(':'));
  }
  return [...out];
}

/**
 * This host's IPv4 addresses from /proc/net/fib_trie: the "/32 host LOCAL"
 * leaves. The kernel keeps them while a link is down (unlike Node's
 * networkInterfaces(), which skips such links).
 */
export function parseFibTrieLocal(text: string): string[] {
  const out = new Set<string>();
  let leaf: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
    if (m) leaf = m[1];
    else if (leaf && /^\s*\/32 host LOCAL$/.test(line)) out.add(leaf);
  }
  return [...out];
}

/** This host's IPv6 addresses from /proc/net/if_inet6 (tentative and deprecated ones too: they are ours). */
export function parseIfInet6(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const hex = line.trim().split(/\s+/)[0] ?? '';
    if (/^[0-9a-f]{32}$/i.test(hex)) out.add(hex.match(/.{4}/g)!.join(':'));
  }
  return [...out];
}

/** How long an address this host held stays on the never-ban list after it was last seen. */
export const HELD_ADDRESS_MS = 30 * 86400_000;
const MAX_HELD = 1024;

/**
 * Addresses this host holds now or held within HELD_ADDRESS_MS (address →
 * last seen, ms). The kernel flushes a link's IPv6 addresses when it goes down
 * (keep_addr_on_down=0, the default) and they come back with the link; a ban
 * made meanwhile would cut the host off from its own address.
 */
export function mergeHeld(prev: Readonly<Record<string, number>>, current: readonly string[], now: number): Record<string, number> {
  const next: Record<string, number> = {};
  const old = Object.entries(prev).filter(([a, t]) => Number.isFinite(t) && now - t < HELD_ADDRESS_MS && !current.includes(a));
  for (const [a, t] of old.sort((x, y) => y[1] - x[1]).slice(0, MAX_HELD)) next[a] = t;
  for (const a of current) next[a] = now;
  return next;
}
