/**
 * The kernel ban table: exact IPv4/IPv6 addresses in hashes, CIDRs in LPM
 * tries. One table serves every attached interface.
 */
import { decodeBan, DROP_SLOTS, encodeBan, Layout, type BanValue } from '../core/abi.js';
import { addr16ToString, type Cidr } from '../core/addr.js';
import type { BpfMap, BpfObject } from '../adapters/kernel.js';
import ipaddr from 'ipaddr.js';
import { Presence, type Trie } from './presence.js';
import { lpmKey } from './allow-list.js';

export interface BanEntry {
  target: string; // "1.2.3.4", "2001:db8::/48"
  family: 4 | 6;
  map: string;
  key: Buffer;
  value: BanValue;
}

const BAN_MAPS = ['sentry_bans_v4', 'sentry_bans_v6', 'sentry_ban_cidr_v4', 'sentry_ban_cidr_v6'] as const;

function keyText(map: string, key: Buffer): { target: string; family: 4 | 6 } {
  switch (map) {
    case 'sentry_bans_v4':
      return { target: `${key[0]}.${key[1]}.${key[2]}.${key[3]}`, family: 4 };
    case 'sentry_bans_v6':
      return { target: addr16ToString(key), family: 6 };
    case 'sentry_ban_cidr_v4': {
      const len = key.readUInt32LE(0);
      return { target: `${key[4]}.${key[5]}.${key[6]}.${key[7]}/${len}`, family: 4 };
    }
    default: {
      const len = key.readUInt32LE(0);
      return { target: `${ipaddr.fromByteArray([...key.subarray(4, 20)]).toString()}/${len}`, family: 6 };
    }
  }
}

/** The map and key a ban of `c` lives under. */
export function banKey(c: Cidr): { map: (typeof BAN_MAPS)[number]; key: Buffer } {
  const exact = c.prefix === (c.family === 4 ? 32 : 128);
  if (exact) return { map: c.family === 4 ? 'sentry_bans_v4' : 'sentry_bans_v6', key: Buffer.from(c.bytes) };
  return { map: c.family === 4 ? 'sentry_ban_cidr_v4' : 'sentry_ban_cidr_v6', key: lpmKey(c) };
}

export class BanTable {
  private readonly maps: Map<string, BpfMap>;
  private capacity = new Map<string, number>();
  private readonly presence: Presence;

  constructor(private readonly obj: BpfObject) {
    this.maps = new Map(BAN_MAPS.map((n) => [n, obj.map(n)]));
    this.presence = new Presence(obj);
  }

  private static trie(map: string): Trie | undefined {
    return map === 'sentry_ban_cidr_v4' ? 'cidr_v4' : map === 'sentry_ban_cidr_v6' ? 'cidr_v6' : undefined;
  }

  add(c: Cidr, v: BanValue): void {
    const { map, key } = banKey(c);
    const trie = BanTable.trie(map);
    if (trie) this.presence.raise(trie);
    this.maps.get(map)!.update(key, encodeBan(v));
    if (trie) this.presence.recount(trie, this.maps.get(map)!);
  }

  /** Many at once: the tries' presence counts are raised and recounted once, not per entry. */
  addMany(bans: ReadonlyArray<{ target: Cidr; value: BanValue }>): void {
    const touched = new Set<string>();
    for (const { target, value } of bans) {
      const { map, key } = banKey(target);
      const trie = BanTable.trie(map);
      if (trie && !touched.has(map)) {
        this.presence.raise(trie);
        touched.add(map);
      }
      this.maps.get(map)!.update(key, encodeBan(value));
    }
    for (const map of touched) this.presence.recount(BanTable.trie(map)!, this.maps.get(map)!);
  }

  /**
   * Packets each address's ban dropped beyond what its entry counts: the
   * kernel counts them per CPU (sentry_drops), by target.
   */
  dropCounts(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    const size = Layout.sx_dropslot.size;
    const { values, ncpu } = this.obj.percpuArray('sentry_drops', DROP_SLOTS, size);
    for (let at = 0; at < DROP_SLOTS * ncpu * size; at += size) {
      const n = values.readBigUInt64LE(at + Layout.sx_dropslot.fields.drops[0]);
      if (!n) continue;
      const target = addr16ToString(values.subarray(at, at + 16));
      out.set(target, (out.get(target) ?? 0n) + n);
    }
    return out;
  }

  /** Packets the ban of `c` dropped (its entry, and for an address its per-CPU counts). */
  drops(c: Cidr): bigint {
    const v = this.get(c);
    if (!v) return 0n;
    if (banKey(c).map.startsWith('sentry_ban_cidr')) return v.drops;
    return v.drops + (this.dropCounts().get(c.text) ?? 0n);
  }

  get(c: Cidr): BanValue | undefined {
    const { map, key } = banKey(c);
    const v = this.maps.get(map)!.lookup(key);
    return v ? decodeBan(v) : undefined;
  }

  remove(c: Cidr): boolean {
    const { map, key } = banKey(c);
    const gone = this.maps.get(map)!.delete(key);
    const trie = BanTable.trie(map);
    if (trie) this.presence.recount(trie, this.maps.get(map)!);
    return gone;
  }

  /** The whole of one map, packed; the buffer grows until it holds everything. */
  private dumpAll(name: string, m: BpfMap): { keys: Buffer; values: Buffer; count: number } {
    let max = this.capacity.get(name) ?? 1024;
    let dump = m.dump(max);
    while (dump.count >= max) {
      max *= 4;
      dump = m.dump(max);
    }
    this.capacity.set(name, Math.max(1024, dump.count * 2));
    return dump;
  }

  /** Every entry of the four maps, expired or not. */
  entries(): BanEntry[] {
    const out: BanEntry[] = [];
    for (const [name, m] of this.maps) {
      const dump = this.dumpAll(name, m);
      for (let i = 0; i < dump.count; i++) {
        const key = Buffer.from(dump.keys.subarray(i * m.keySize, (i + 1) * m.keySize));
        out.push({ ...keyText(name, key), map: name, key, value: decodeBan(dump.values, i * m.valueSize) });
      }
    }
    return out;
  }

  /** How many entries the four maps hold (expired ones not yet swept included). */
  size(): number {
    let n = 0;
    for (const m of this.maps.values()) n += m.count();
    return n;
  }

  /**
   * Evicts automatic bans, soonest to expire first, until at most `max`
   * entries remain. Manual, imported and fleet bans are never evicted.
   */
  evictAuto(max: number): BanEntry[] {
    const all = this.entries();
    const excess = all.length - max;
    if (excess <= 0) return [];
    const auto = all
      .filter((e) => e.value.origin === 1)
      .sort((a, b) => (a.value.expiresNs === 0n ? 1 : b.value.expiresNs === 0n ? -1 : Number(a.value.expiresNs - b.value.expiresNs)));
    const out = auto.slice(0, excess);
    for (const e of out) this.maps.get(e.map)!.delete(e.key);
    return out;
  }

  /**
   * Live bans in chunks, as columns (no object per ban): the map, the targets
   * and their seconds left (0 = permanent). A million bans never sit in memory
   * at once: hash maps are read in batches of `size`, tries whole (they are small).
   */
  *liveChunks(nowNs: bigint, size: number): Generator<{ map: string; targets: string[]; seconds: number[]; ages: number[] }> {
    const now = Number(nowNs);
    const F = Layout.sx_ban.fields;
    const u64 = (b: Buffer, at: number) => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 0x100000000;
    for (const [name, m] of this.maps) {
      for (const part of m.chunks(size) ?? [this.dumpAll(name, m)]) {
        const targets: string[] = [];
        const seconds: number[] = [];
        const ages: number[] = []; // seconds since the ban was made
        for (let i = 0; i < part.count; i++) {
          const exp = u64(part.values, i * m.valueSize + F.expires_ns[0]);
          if (exp !== 0 && exp <= now) continue;
          targets.push(keyText(name, part.keys.subarray(i * m.keySize, (i + 1) * m.keySize)).target);
          seconds.push(exp === 0 ? 0 : Math.max(1, Math.ceil((exp - now) / 1e9)));
          ages.push((now - u64(part.values, i * m.valueSize + F.created_ns[0])) / 1e9);
        }
        if (targets.length) yield { map: name, targets, seconds, ages };
      }
    }
  }

  /**
   * Deletes the bans whose expiry has passed and returns them. The scan runs
   * in the shim (C), so the daemon never materialises the whole table; each
   * entry is read again just before it is deleted, so a renewed ban survives.
   */
  sweepExpired(nowNs: bigint, max = 4096): BanEntry[] {
    const removed: BanEntry[] = [];
    for (const [name, m] of this.maps) {
      const { keys, values, count } = m.sweepExpired(nowNs, max);
      for (let i = 0; i < count; i++) {
        const key = Buffer.from(keys.subarray(i * m.keySize, (i + 1) * m.keySize));
        removed.push({ ...keyText(name, key), map: name, key, value: decodeBan(values, i * m.valueSize) });
      }
      const trie = BanTable.trie(name);
      if (trie && count) this.presence.recount(trie, m);
    }
    return removed;
  }
}
