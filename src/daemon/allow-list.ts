/**
 * The kernel allow list (PortSentry's portsentry.ignore): LPM tries that the
 * XDP program checks before anything else.
 */
import ipaddr from 'ipaddr.js';
import { ALLOW, Layout, MapSize } from '../core/abi.js';
import { parseCidr, type Cidr } from '../core/addr.js';
import type { BpfMap, BpfObject } from '../adapters/kernel.js';
import { Presence } from './presence.js';

/** The LPM trie key (struct sx_lpm_v4/v6) of a network. */
export function lpmKey(c: Cidr): Buffer {
  const key = Buffer.alloc(c.family === 4 ? Layout.sx_lpm_v4.size : Layout.sx_lpm_v6.size);
  key.writeUInt32LE(c.prefix, 0);
  c.bytes.copy(key, 4);
  return key;
}

const hostPrefix = (c: Cidr) => (c.family === 4 ? 32 : 128);
const wideOf = (c: Cidr) => (c.family === 4 ? 'wide_v4' : 'wide_v6');

export class AllowList {
  private readonly v4: BpfMap;
  private readonly v6: BpfMap;
  private readonly presence: Presence;

  constructor(obj: BpfObject) {
    this.v4 = obj.map('sentry_allow_v4');
    this.v6 = obj.map('sentry_allow_v6');
    this.presence = new Presence(obj);
  }

  /**
   * Adds with SX_ALLOW (ignore entirely) or SX_NEVER_BAN (alert, never ban).
   * The XDP program looks in the trie only for a source whose filter bit is
   * set (BpfMap sets it for a host entry) or while wide entries exist: their
   * count is raised before the insert, like the trie's own.
   */
  add(c: Cidr, value: number = ALLOW): void {
    this.insert(c, value);
    this.settle(c.family);
  }

  /** Makes the kernel lists exactly `want` (canonical CIDR text → value), counting once at the end. */
  sync(want: ReadonlyMap<string, { net: Cidr; value: number }>): void {
    const have = new Map(this.entries().map((e) => [e.net.text, e]));
    for (const [text, e] of have) if (want.get(text)?.value !== e.value) this.mapOf(e.net).delete(lpmKey(e.net));
    for (const [text, w] of want) if (have.get(text)?.value !== w.value) this.insert(w.net, w.value);
    this.settle(4);
    this.settle(6);
  }

  remove(c: Cidr): boolean {
    const gone = this.mapOf(c).delete(lpmKey(c));
    this.settle(c.family);
    return gone;
  }

  private mapOf(c: Cidr): BpfMap {
    return c.family === 4 ? this.v4 : this.v6;
  }

  /** The counts are raised before the insert, so the kernel never skips a trie that holds the entry. */
  private insert(c: Cidr, value: number): void {
    this.presence.raise(c.family === 4 ? 'allow_v4' : 'allow_v6');
    if (c.prefix < hostPrefix(c)) this.presence.raise(wideOf(c));
    this.mapOf(c).update(lpmKey(c), Buffer.from([value]));
  }

  /** After inserts or deletes: the exact counts of one family's trie. */
  private settle(family: 4 | 6): void {
    const m = family === 4 ? this.v4 : this.v6;
    this.presence.recount(family === 4 ? 'allow_v4' : 'allow_v6', m);
    this.presence.recountWide(family === 4 ? 'wide_v4' : 'wide_v6', m, family === 4 ? 32 : 128);
  }

  entries(): Array<{ net: Cidr; value: number }> {
    const out: Array<{ net: Cidr; value: number }> = [];
    for (const m of [this.v4, this.v6]) {
      const { keys, values, count } = m.dump(MapSize.allow);
      for (let i = 0; i < count; i++) {
        const k = keys.subarray(i * m.keySize, (i + 1) * m.keySize);
        const len = k.readUInt32LE(0);
        const bytes = [...k.subarray(4, m.keySize)];
        out.push({ net: parseCidr(`${ipaddr.fromByteArray(bytes).toString()}/${len}`), value: values[i]! });
      }
    }
    return out;
  }
}
