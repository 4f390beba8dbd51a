/** This host's addresses, default gateways and resolvers (the automatic never-ban list). */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseResolvConf, parseRouteV4, parseRouteV6 } from '../core/host-facts.js';
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

/** Read in this process's network namespace. */
export function readHostFacts(resolvConf: string): HostFacts {
  return {
    addresses: readHostAddresses(),
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
 * of its link (`ip -j addr`: an address on a link that is down for a moment is
 * still ours); Node's own list, which skips links that are down, where `ip`
 * cannot be run.
 */
export function readHostAddresses(): string[] {
  const out = new Set<string>();
  const r = spawnSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8', timeout: 2000 });
  try {
    for (const link of JSON.parse(r.stdout) as Array<{ addr_info?: Array<{ local?: string }> }>) {
      for (const a of link.addr_info ?? []) if (a.local) out.add(a.local);
    }
    return [...out].sort();
  } catch {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) out.add(a.address.replace(/%.*$/, ''));
    }
    return [...out].sort();
  }
}
