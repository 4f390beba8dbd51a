/**
 * The kernel's protected destinations: this host's addresses and the networks
 * of protect.networks (sentry_protect_v4/v6), and the services there that are
 * never tripwires (sentry_services_v4/v6).
 */
import ipaddr from 'ipaddr.js';
import { DEST_HOST, DEST_NET, Layout } from '../core/abi.js';
import { parseCidr, type Cidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import { parseService, type Service } from '../core/destinations.js';
import type { BpfMap, BpfObject } from '../adapters/kernel.js';
import { lpmKey } from './allow-list.js';

const IPPROTO = { tcp: 6, udp: 17 } as const;

/** The services trie keys (struct sx_svc_v4/v6) of one service: one per port. */
export function serviceKeys(s: Service): Buffer[] {
  const L = s.net.family === 4 ? Layout.sx_svc_v4 : Layout.sx_svc_v6;
  const out: Buffer[] = [];
  for (let port = s.lo; port <= s.hi; port++) {
    const k = Buffer.alloc(L.size);
    k.writeUInt32LE(32 + s.net.prefix, L.fields.prefixlen[0]);
    k.writeUInt8(IPPROTO[s.proto], L.fields.proto[0]);
    k.writeUInt16BE(port, L.fields.port[0]);
    s.net.bytes.copy(k, L.fields.addr[0]);
    out.push(k);
  }
  return out;
}

/** Makes a map hold exactly `want` (key hex → value), touching only what differs. */
function syncMap(m: BpfMap, want: ReadonlyMap<string, Buffer>, max: number): void {
  const { keys, values, count } = m.dump(max);
  const have = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const k = keys.subarray(i * m.keySize, (i + 1) * m.keySize);
    have.set(k.toString('hex'), values.subarray(i * m.valueSize, (i + 1) * m.valueSize).toString('hex'));
  }
  for (const k of have.keys()) if (!want.has(k)) m.delete(Buffer.from(k, 'hex'));
  for (const [k, v] of want) if (have.get(k) !== v.toString('hex')) m.update(Buffer.from(k, 'hex'), v);
}

export class Destinations {
  private readonly protect: Record<4 | 6, BpfMap>;
  private readonly services: Record<4 | 6, BpfMap>;
  private hosts: string[] = [];

  constructor(obj: BpfObject) {
    this.protect = { 4: obj.map('sentry_protect_v4'), 6: obj.map('sentry_protect_v6') };
    this.services = { 4: obj.map('sentry_services_v4'), 6: obj.map('sentry_services_v6') };
  }

  /** Writes this host's addresses and the config's networks and services into the kernel. */
  sync(hostAddresses: readonly string[], cfg: Config): void {
    this.hosts = [...hostAddresses];
    const protect = { 4: new Map<string, Buffer>(), 6: new Map<string, Buffer>() };
    const put = (net: Cidr, value: number) => protect[net.family].set(lpmKey(net).toString('hex'), Buffer.from([value]));
    for (const n of cfg.protect.networks) put(parseCidr(n), DEST_NET);
    for (const a of hostAddresses) {
      try {
        put(parseCidr(a), DEST_HOST);
      } catch {
        /* not an address we can key (never happens for interface addresses) */
      }
    }
    const services = { 4: new Map<string, Buffer>(), 6: new Map<string, Buffer>() };
    for (const text of cfg.protect.services) {
      const s = parseService(text);
      for (const k of serviceKeys(s)) services[s.net.family].set(k.toString('hex'), Buffer.from([1]));
    }
    for (const fam of [4, 6] as const) {
      syncMap(this.protect[fam], protect[fam], 16384);
      syncMap(this.services[fam], services[fam], 16384);
    }
  }

  /** What the kernel holds: this host's addresses, the protected networks, how many service ports. */
  read(): { hostAddresses: string[]; networks: string[]; servicePorts: number } {
    const hostAddresses: string[] = [];
    const networks: string[] = [];
    for (const fam of [4, 6] as const) {
      const m = this.protect[fam];
      const { keys, values, count } = m.dump(16384);
      for (let i = 0; i < count; i++) {
        const k = keys.subarray(i * m.keySize, (i + 1) * m.keySize);
        const prefix = k.readUInt32LE(0);
        const text = parseCidr(`${ipaddr.fromByteArray([...k.subarray(4)]).toString()}/${prefix}`).text;
        (values[i * m.valueSize] === DEST_HOST ? hostAddresses : networks).push(text);
      }
    }
    const servicePorts = this.services[4].count() + this.services[6].count();
    return { hostAddresses: hostAddresses.sort(), networks: networks.sort(), servicePorts };
  }

  /** Follows this host's addresses: re-syncs when they changed; returns the change, if any. */
  follow(hostAddresses: readonly string[], cfg: Config): { added: string[]; removed: string[] } | undefined {
    const before = new Set(this.hosts);
    const now = new Set(hostAddresses);
    const added = hostAddresses.filter((a) => !before.has(a));
    const removed = this.hosts.filter((a) => !now.has(a));
    if (!added.length && !removed.length) return undefined;
    this.sync(hostAddresses, cfg);
    return { added, removed };
  }
}
