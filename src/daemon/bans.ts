/**
 * Bans as a first-class tool: what `ban`, `unban` and `list` do, and what the
 * daemon does with the kernel's automatic bans. Each ban goes to the kernel
 * table (authoritative: expiry enforced by the XDP program), the journal
 * (reason, who, wall-clock times) and nftables (visibility, interfaces without
 * XDP). Works with or without a running daemon.
 */
import { encodeBan, Origin as KernelOrigin } from '../core/abi.js';
import type { Cidr } from '../core/addr.js';
import { contains } from '../core/policy.js';
import { kindKey, scanName } from '../core/scan-kind.js';
import { SentryError } from '../errors.js';
import { kernelClockNs } from '../adapters/kernel.js';
import type { BanJournal, BanRecord, Origin } from '../adapters/journal.js';
import { BanTable, banKey } from './ban-table.js';
import type { Gateway } from './gateway.js';

export interface BanRequest {
  target: Cidr;
  ttl: number; // seconds, 0 = permanent
  reason: string;
  origin: Origin;
  by: string;
  port?: number;
  proto?: string;
  kind?: string;
}

/** What bans need of nftables (src/adapters/nft.ts, wrapped by NftSync). */
export interface NftBans {
  add(bans: Array<{ target: string; timeoutSeconds: number }>, onProgress?: (done: number, total: number) => void): Promise<void>;
  remove(targets: string[]): Promise<number>;
  flush(): Promise<void>;
}

export interface Protected {
  net: Cidr;
  why: string; // "this host's address", "the allow list", ...
}

export interface ListEntry {
  target: string;
  origin: Origin;
  expires: string | null; // ISO time, null = permanent
  remainingSeconds: number | null;
  drops: number;
  reason: string;
  probe: string | null;
  by: string | null;
}

const ORIGIN_CODE: Record<Origin, number> = {
  auto: KernelOrigin.AUTO,
  manual: KernelOrigin.MANUAL,
  imported: KernelOrigin.IMPORTED,
  fleet: KernelOrigin.FLEET,
};
const ORIGIN_NAME: Record<number, Origin> = { 1: 'auto', 2: 'manual', 3: 'imported', 4: 'fleet' };

/** Refuses targets that would ban this host, its gateways, resolvers or the allow list. */
export function checkProtected(targets: readonly Cidr[], prot: readonly Protected[]): void {
  for (const t of targets) {
    for (const p of prot) {
      const inside = contains(p.net, t);
      if (!inside && !contains(t, p.net)) continue;
      const what = inside ? `it is ${p.why}` : `it covers ${p.net.text}, which is ${p.why}`;
      throw new SentryError(
        'USAGE',
        `refusing to ban ${t.text}: ${what}`,
        'never-ban and allow entries are never banned; narrow the range or change those lists first',
      );
    }
  }
}

export class BanService {
  readonly table: BanTable;

  constructor(
    private readonly gw: Gateway,
    private readonly journal: BanJournal,
    private readonly nft: NftBans | undefined,
  ) {
    this.table = new BanTable(gw.obj);
  }

  /**
   * Applies bans to the kernel (exact addresses in batches), the journal (one
   * write) and nftables (a handful of batches). onProgress reports per stage.
   */
  async ban(reqs: readonly BanRequest[], onProgress?: (stage: string, done: number, total: number) => void): Promise<void> {
    const now = kernelClockNs();
    const wall = Date.now();
    const groups = new Map<string, BanRequest[]>();
    for (const r of reqs) {
      const { map } = banKey(r.target);
      const g = groups.get(map);
      if (g) g.push(r);
      else groups.set(map, [r]);
    }
    let done = 0;
    const CHUNK = 16384;
    for (const [map, list] of groups) {
      if (map === 'sentry_bans_v4' || map === 'sentry_bans_v6') {
        const m = this.gw.obj.map(map);
        for (let i = 0; i < list.length; i += CHUNK) {
          const part = list.slice(i, i + CHUNK);
          const keys = Buffer.alloc(part.length * m.keySize);
          const vals = Buffer.alloc(part.length * m.valueSize);
          part.forEach((r, j) => {
            r.target.bytes.copy(keys, j * m.keySize);
            encodeBan(this.value(r, now), vals, j * m.valueSize);
          });
          m.updateBatch(keys, vals, part.length);
          done += part.length;
          onProgress?.('kernel', done, reqs.length);
        }
      } else {
        for (const r of list) {
          this.table.add(r.target, this.value(r, now));
          onProgress?.('kernel', ++done, reqs.length);
        }
      }
    }
    this.journal.append(
      reqs.map((r): BanRecord => ({
        op: 'ban',
        time: wall,
        target: r.target.text,
        ttl: r.ttl,
        expires: r.ttl ? wall + r.ttl * 1000 : null,
        origin: r.origin,
        reason: r.reason,
        by: r.by,
        ...(r.port !== undefined ? { port: r.port } : {}),
        ...(r.proto ? { proto: r.proto } : {}),
        ...(r.kind ? { kind: r.kind } : {}),
      })),
    );
    await this.nft?.add(
      reqs.map((r) => ({ target: r.target.text, timeoutSeconds: r.ttl })),
      onProgress && ((d, t) => onProgress('nft', d, t)),
    );
  }

  private value(r: BanRequest, now: bigint) {
    return {
      expiresNs: r.ttl ? now + BigInt(r.ttl) * 1_000_000_000n : 0n,
      createdNs: now,
      drops: 0n,
      port: r.port ?? 0,
      proto: r.proto === 'tcp' ? 6 : r.proto === 'udp' ? 17 : 0,
      kind: 0,
      origin: ORIGIN_CODE[r.origin],
    };
  }

  /** Removes bans; returns the targets that were banned. */
  async unban(targets: readonly Cidr[], by: string, why = 'unbanned by hand'): Promise<string[]> {
    const gone = targets.filter((t) => this.table.remove(t)).map((t) => t.text);
    const wall = Date.now();
    this.journal.append(gone.map((target) => ({ op: 'unban', time: wall, target, why, by })));
    if (gone.length) await this.nft?.remove(gone);
    return gone;
  }

  async unbanAll(by: string): Promise<string[]> {
    const entries = this.table.entries();
    for (const e of entries) this.table.remove(parseEntry(e));
    const wall = Date.now();
    this.journal.append(entries.map((e) => ({ op: 'unban', time: wall, target: e.target, why: 'unban --all', by })));
    await this.nft?.flush();
    return entries.map((e) => e.target);
  }

  /** Every ban in force, joined with what the journal knows. */
  list(): ListEntry[] {
    const now = kernelClockNs();
    const wall = Date.now();
    const { bans: meta } = this.journal.replay();
    const out: ListEntry[] = [];
    for (const e of this.table.entries()) {
      const v = e.value;
      if (v.expiresNs !== 0n && v.expiresNs <= now) continue; // lapsed, not yet swept
      const m = meta.get(e.target);
      const remaining = v.expiresNs === 0n ? null : Math.ceil(Number(v.expiresNs - now) / 1e9);
      const origin = ORIGIN_NAME[v.origin] ?? 'manual';
      const probe =
        v.origin === KernelOrigin.AUTO && v.proto
          ? `${scanName(v.kind, 0).replace(/ \(flags: none\)/, '')} to ${v.proto === 17 ? 'UDP' : 'TCP'} port ${v.port}`
          : null;
      out.push({
        target: e.target,
        origin,
        expires: remaining === null ? null : new Date(wall + remaining * 1000).toISOString(),
        remainingSeconds: remaining,
        drops: Number(v.drops),
        reason: m?.reason ?? (probe ? `scan: ${kindKey(v.kind)}` : ''),
        probe,
        by: m?.by ?? (origin === 'auto' ? 'sentry-xdp' : null),
      });
    }
    return out.sort((a, b) => (a.remainingSeconds ?? Infinity) - (b.remainingSeconds ?? Infinity) || a.target.localeCompare(b.target));
  }
}

function parseEntry(e: { target: string; family: 4 | 6; key: Buffer; map: string }): Cidr {
  const exact = e.map === 'sentry_bans_v4' || e.map === 'sentry_bans_v6';
  const bytes = exact ? e.key : e.key.subarray(4);
  const prefix = exact ? (e.family === 4 ? 32 : 128) : e.key.readUInt32LE(0);
  return { family: e.family, bytes: Buffer.from(bytes), prefix, text: e.target };
}

