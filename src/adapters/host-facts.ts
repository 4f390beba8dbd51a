/** This host's addresses, default gateways and resolvers (the automatic never-ban list). */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseResolvConf, parseRouteV4, parseRouteV6 } from '../core/host-facts.js';

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
  const addresses: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) addresses.push(a.address.replace(/%.*$/, ''));
  }
  return {
    addresses,
    gateways: [...parseRouteV4(read('/proc/net/route')), ...parseRouteV6(read('/proc/net/ipv6_route'))],
    nameservers: parseResolvConf(read(resolvConf)),
  };
}
