/**
 * Entry counts of the LPM tries (struct sx_presence), which let the XDP fast
 * path skip an empty trie. Rule: raise the count before inserting, recount
 * after deleting, so the kernel never sees zero while a trie has entries.
 */
import { Layout, MapSize } from '../core/abi.js';
import type { BpfMap, BpfObject } from '../adapters/kernel.js';

export type Trie = 'allow_v4' | 'allow_v6' | 'cidr_v4' | 'cidr_v6' | 'wide_v4' | 'wide_v6' | 'svc_v4' | 'svc_v6';

export class Presence {
  private readonly map: BpfMap;
  private readonly key = Buffer.alloc(4);

  constructor(obj: BpfObject) {
    this.map = obj.map('sentry_presence');
  }

  private offset(t: Trie): number {
    return Layout.sx_presence.fields[t][0];
  }

  read(t: Trie): number {
    return this.map.lookup(this.key)!.readUInt32LE(this.offset(t));
  }

  /** One count alone: a CLI and the daemon writing different counts at once never undo each other. */
  private write(t: Trie, n: number): void {
    this.map.storeU32(this.offset(t), n);
  }

  /** Before an insert: make sure the program looks in this trie. */
  raise(t: Trie): void {
    if (this.read(t) === 0) this.write(t, 1);
  }

  /** After inserts or deletes: the exact count. */
  recount(t: Trie, trie: BpfMap): void {
    this.write(t, trie.count());
  }

  /** After inserts or deletes: the exact count of the entries wider than one host (LPM keys: prefix length first). */
  recountWide(t: Trie, trie: BpfMap, hostPrefix: number): void {
    const { keys, count } = trie.dump(MapSize.allow);
    let wide = 0;
    for (let i = 0; i < count; i++) if (keys.readUInt32LE(i * trie.keySize) < hostPrefix) wide++;
    this.write(t, wide);
  }
}
