/**
 * The kernel's protected destinations: this host's addresses and the networks
 * of protect.networks (sentry_protect_v4/v6), and the services there that are
 * never tripwires (sentry_services_v4/v6).
 */
import ipaddr from 'ipaddr.js';
import { DEST_HOST, DEST_NET, filterBit, HOST_SLOTS_LOG, Layout, MapSize } from '../core/abi.js';
import { parseCidr, type Cidr } from '../core/addr.js';
import type { Config } from '../core/config.js';
import { parseService, type Service } from '../core/destinations.js';
import type { BpfMap, BpfObject } from '../adapters/kernel.js';
import { lpmKey } from './allow-list.js';
import { Presence } from './presence.js';

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

/** The 16 bytes of a host address as the XDP program keys it (IPv4 v4-mapped). */
function mapped(c: Cidr): Buffer {
  if (c.family === 6) return Buffer.from(c.bytes);
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0xffff, 10);
  c.bytes.copy(b, 12);
  return b;
}

/**
 * sentry_hosts (struct sx_host_slot, direct-mapped by sx_filter_bit of the
 * address's four words XORed): the first of `hosts` (in order) takes a
 * shared slot; the others are found in the trie.
 */
export function hostSlots(hosts: readonly Cidr[]): Buffer {
  const S = Layout.sx_host_slot;
  const table = Buffer.alloc((1 << HOST_SLOTS_LOG) * S.size);
  for (const h of hosts) {
    const a = mapped(h);
    const fold = a.readUInt32LE(0) ^ a.readUInt32LE(4) ^ a.readUInt32LE(8) ^ a.readUInt32LE(12);
    const at = filterBit(fold, HOST_SLOTS_LOG) * S.size;
    if (table[at + S.fields.scope[0]]) continue;
    a.copy(table, at + S.fields.addr[0]);
    table[at + S.fields.scope[0]] = DEST_HOST;
  }
  return table;
}

function hostCidrs(texts: readonly string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const a of [...texts].sort()) {
    try {
      const c = parseCidr(a);
      if (c.prefix === (c.family === 4 ? 32 : 128)) out.push(c);
    } catch {
      /* not an address we can key */
    }
  }
  return out;
}

export class Destinations {
  private readonly protect: Record<4 | 6, BpfMap>;
  private readonly services: Record<4 | 6, BpfMap>;
  private readonly slots: BpfMap;
  private readonly slotKeys: Buffer;
  private readonly presence: Presence;
  private hosts: string[] = [];

  constructor(obj: BpfObject) {
    this.protect = { 4: obj.map('sentry_protect_v4'), 6: obj.map('sentry_protect_v6') };
    this.services = { 4: obj.map('sentry_services_v4'), 6: obj.map('sentry_services_v6') };
    this.slots = obj.map('sentry_hosts');
    this.presence = new Presence(obj);
    this.slotKeys = Buffer.alloc((1 << HOST_SLOTS_LOG) * 4);
    for (let i = 0; i < 1 << HOST_SLOTS_LOG; i++) this.slotKeys.writeUInt32LE(i, i * 4);
  }

  private writeSlots(hosts: readonly Cidr[]): void {
    this.slots.updateBatch(this.slotKeys, hostSlots(hosts), 1 << HOST_SLOTS_LOG);
  }

  /** Writes this host's addresses and the config's networks and services into the kernel. */
  sync(hostAddresses: readonly string[], cfg: Config): void {
    // an address leaves its slot before it leaves the trie, and takes one only once it is in the trie
    const staying = new Set(hostAddresses);
    this.writeSlots(hostCidrs(this.hosts.filter((a) => staying.has(a))));
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
      const svc = fam === 4 ? 'svc_v4' : 'svc_v6';
      syncMap(this.protect[fam], protect[fam], MapSize.protect);
      if (services[fam].size) this.presence.raise(svc);
      syncMap(this.services[fam], services[fam], MapSize.services);
      this.presence.recount(svc, this.services[fam]);
    }
    this.writeSlots(hostCidrs(hostAddresses));
  }

  /** What the kernel holds: this host's addresses, the protected networks, how many service ports. */
  read(): { hostAddresses: string[]; networks: string[]; servicePorts: number } {
    const hostAddresses: string[] = [];
    const networks: string[] = [];
    for (const fam of [4, 6] as const) {
      const m = this.protect[fam];
      const { keys, values, count } = m.dump(MapSize.protect);
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
