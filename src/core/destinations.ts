/**
 * Protected destinations (the gateway model): a packet can be a probe only when
 * it is addressed to this host or to a network the admin listed, and not to a
 * service the admin listed there. Pure: parsing and the kernel entries wanted.
 */
import { SentryError } from '../errors.js';
import { parseCidr, type Cidr } from './addr.js';
import { MapSize } from './abi.js';

/** How many service entries (one per port) the kernel's services tries hold. */
export const MAX_SERVICE_PORTS = MapSize.services;

/** "198.19.0.10:143/tcp", "198.19.0.0/24:161/udp", "2001:db8:1::10:443/tcp", "[2001:db8:1::10]:8000-8010/tcp". */
export interface Service {
  net: Cidr;
  proto: 'tcp' | 'udp';
  lo: number;
  hi: number;
  text: string; // canonical
}

export function parseService(input: string): Service {
  const text = input.trim();
  const m = /^(.+):(\d{1,5})(?:-(\d{1,5}))?\/(tcp|udp)$/i.exec(text);
  const hint = 'write ADDRESS[/PREFIX]:PORT/tcp or /udp, like 198.19.0.10:143/tcp, 198.19.0.0/24:161/udp or [2001:db8:1::10]:443/tcp';
  if (!m) throw new SentryError('CONFIG', `"${input}" is not a service`, hint);
  const addr = m[1]!.replace(/^\[(.*)\](\/\d+)?$/, '$1$2');
  let net: Cidr;
  try {
    net = parseCidr(addr);
  } catch {
    throw new SentryError('CONFIG', `"${input}" is not a service: "${addr}" is not an address or network`, hint);
  }
  const lo = Number(m[2]);
  const hi = m[3] === undefined ? lo : Number(m[3]);
  if (lo < 1 || hi > 65535 || lo > hi) throw new SentryError('CONFIG', `"${input}" is not a service: ports are 1-65535, a range low-high`, hint);
  const proto = m[4]!.toLowerCase() as 'tcp' | 'udp';
  const host = net.family === 6 ? `[${net.text.replace(/\/\d+$/, '')}]${net.prefix < 128 ? `/${net.prefix}` : ''}` : net.text;
  return { net, proto, lo, hi, text: `${host}:${lo === hi ? lo : `${lo}-${hi}`}/${proto}` };
}

/** The number of kernel entries (one per port) a list of services takes. */
export function servicePorts(services: readonly Service[]): number {
  return services.reduce((n, s) => n + s.hi - s.lo + 1, 0);
}

/** True when network `inner` lies inside network `outer`. */
function within(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  for (let bit = 0; bit < outer.prefix; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((inner.bytes[bit >> 3]! & mask) !== (outer.bytes[bit >> 3]! & mask)) return false;
  }
  return true;
}

/**
 * Lines for services that can have no effect: in no protected network and not
 * on one of this host's addresses (where a service is a port forward: DNAT).
 */
export function serviceWarnings(networks: readonly Cidr[], services: readonly Service[], hostAddresses: readonly Cidr[] = []): string[] {
  return services
    .filter((s) => !networks.some((n) => within(s.net, n)) && !hostAddresses.some((h) => within(h, s.net)))
    .map((s) => `protect.services: ${s.text} lies in no network of protect.networks and holds no address of this host; it has no effect`);
}

/** The most specific of `networks` that holds `address` (canonical text), or undefined. */
export function networkOf(address: string, networks: readonly string[]): string | undefined {
  let a: Cidr;
  try {
    a = parseCidr(address);
  } catch {
    return undefined;
  }
  let best: Cidr | undefined;
  for (const text of networks) {
    const n = parseCidr(text);
    if (within(a, n) && (!best || n.prefix > best.prefix)) best = n;
  }
  return best?.text;
}
