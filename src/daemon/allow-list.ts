/**
 * The kernel allow list (PortSentry's portsentry.ignore): LPM tries that the
 * XDP program checks before anything else.
 */
import ipaddr from 'ipaddr.js';
import { Layout } from '../core/abi.js';
import { parseCidr, type Cidr } from '../core/addr.js';
import type { BpfMap, BpfObject } from '../adapters/kernel.js';
import { Presence } from './presence.js';

function lpmKey(c: Cidr): Buffer {
  const key = Buffer.alloc(c.family === 4 ? Layout.sx_lpm_v4.size : Layout.sx_lpm_v6.size);
  key.writeUInt32LE(c.prefix, 0);
  c.bytes.copy(key, 4);
  return key;
}

export class AllowList {
  private readonly v4: BpfMap;
  private readonly v6: BpfMap;
  private readonly presence: Presence;

  constructor(obj: BpfObject) {
    this.v4 = obj.map('sentry_allow_v4');
    this.v6 = obj.map('sentry_allow_v6');
    this.presence = new Presence(obj);
  }

  add(c: Cidr): void {
    const trie = c.family === 4 ? 'allow_v4' : 'allow_v6';
    const m = c.family === 4 ? this.v4 : this.v6;
    this.presence.raise(trie);
    m.update(lpmKey(c), Buffer.from([1]));
    this.presence.recount(trie, m);
  }

  remove(c: Cidr): boolean {
    const m = c.family === 4 ? this.v4 : this.v6;
    const gone = m.delete(lpmKey(c));
    this.presence.recount(c.family === 4 ? 'allow_v4' : 'allow_v6', m);
    return gone;
  }

  list(): Cidr[] {
    const out: Cidr[] = [];
    for (const m of [this.v4, this.v6]) {
      const { keys, count } = m.dump(65536);
      for (let i = 0; i < count; i++) {
        const k = keys.subarray(i * m.keySize, (i + 1) * m.keySize);
        const len = k.readUInt32LE(0);
        const bytes = [...k.subarray(4, m.keySize)];
        out.push(parseCidr(`${ipaddr.fromByteArray(bytes).toString()}/${len}`));
      }
    }
    return out;
  }
}
