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
