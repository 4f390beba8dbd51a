/** This host's addresses, default gateways and resolvers (the automatic never-ban list). */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { parseCidr } from '../core/addr.js';
import { mergeHeld, parseFibTrieLocal, parseIfInet6, parseResolvConf, parseRouteV4, parseRouteV6 } from '../core/host-facts.js';
import { parsePortRange } from '../core/ports.js';

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export interface HostFacts {
  addresses: string[];
  gateways: string[];
  nameservers: string[];
}

/**
 * Read in this process's network namespace. With a state directory the
 * addresses include those held lately (readHeldAddresses): the never-ban list
 * wants them, the protected destinations (readHostAddresses) do not.
 */
export function readHostFacts(resolvConf: string, stateDir?: string): HostFacts {
  return {
    addresses: stateDir === undefined ? readHostAddresses() : readHeldAddresses(stateDir),
    gateways: [...parseRouteV4(read('/proc/net/route')), ...parseRouteV6(read('/proc/net/ipv6_route'))],
    nameservers: parseResolvConf(read(resolvConf)),
  };
}

/** This network namespace's ephemeral port range (net.ipv4.ip_local_port_range, shared by IPv6). */
export function readEphemeralRange(): [number, number] | undefined {
  return parsePortRange(read('/proc/sys/net/ipv4/ip_local_port_range'));
}

/**
 * This host's own addresses, v4 and v6, on every interface whatever the state
 * of its link: `ip -j addr` where it can be run, the kernel's own tables in
 * /proc (an address on a link that is down, a tentative or deprecated IPv6
 * address is still ours), and Node's list (which skips links that are down).
 */
export function readHostAddresses(): string[] {
  const out = new Set<string>([...parseFibTrieLocal(read('/proc/net/fib_trie')), ...parseIfInet6(read('/proc/net/if_inet6'))]);
  const r = spawnSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8', timeout: 2000 });
  try {
    for (const link of JSON.parse(r.stdout) as Array<{ addr_info?: Array<{ local?: string }> }>) {
      for (const a of link.addr_info ?? []) if (a.local) out.add(a.local);
    }
  } catch {
    /* no `ip`: /proc and Node's list */
  }
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(a.address.replace(/%.*$/, ''));
  }
  return canonical(out);
}

/** Canonical text (so "2001:0db8:..." from /proc and "2001:db8::" from `ip` are one), sorted. */
function canonical(texts: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const t of texts) {
    try {
      out.add(parseCidr(t).text);
    } catch {
      /* not an address we can key */
    }
  }
  return [...out].sort();
}

/**
 * readHostAddresses() plus the addresses this host held lately, remembered in
 * the state directory (core/host-facts.ts mergeHeld says why). The file is
 * rewritten only when the set changes or a day has passed; a state directory
 * that cannot be written costs the memory, never the current addresses.
 */
function readHeldAddresses(stateDir: string, now = Date.now()): string[] {
  const current = readHostAddresses();
  const file = join(stateDir, 'host-addresses.json');
  let prev: Record<string, number> = {};
  try {
    const parsed = JSON.parse(read(file)) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) prev = parsed as Record<string, number>;
  } catch {
    /* none yet, or garbled: start afresh */
  }
  const next = mergeHeld(prev, current, now);
  const same = Object.keys(next).length === Object.keys(prev).length && current.every((a) => now - (prev[a] ?? 0) < 86400_000);
  if (!same) {
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o750 });
      writeFileSync(`${file}.tmp`, JSON.stringify(next));
      renameSync(`${file}.tmp`, file);
    } catch {
      /* read-only state directory: the current addresses still count */
    }
  }
  return canonical(Object.keys(next));
}
