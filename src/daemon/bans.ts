/**
 * Bans as a first-class tool: what `ban`, `unban` and `list` do, and what the
 * daemon does with the kernel's automatic bans. Each ban goes to the kernel
 * table (authoritative: expiry enforced by the XDP program), the journal
 * (reason, who, wall-clock times) and nftables (visibility, interfaces without
 * XDP). Works with or without a running daemon.
 */
import { encodeBan, Layout, Origin as KernelOrigin, ORIGIN_CODE, ORIGIN_NAME } from '../core/abi.js';
import { DOTTED_QUAD, parseCidr, type Cidr } from '../core/addr.js';
import { isPacked, PACKED_RECORD, PR, type PackedBans } from '../core/ban-pack.js';
import { contains } from '../core/policy.js';
import { kindKey, scanName } from '../core/scan-kind.js';
import { SentryError } from '../errors.js';
import { kernelClockNs } from '../adapters/kernel.js';
import type { BanRecord, Origin, UnbanRecord } from '../adapters/journal.js';
import type { HistoryStore } from '../adapters/history.js';
import { BanTable, banKey, type BanEntry } from './ban-table.js';
import type { BanEffects, EndedBan, Ending } from './ban-effects.js';
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
  /** When it began (wall ms); default now. The kernel's automatic bans carry their own. */
  time?: number;
}

/** What bans need of nftables (src/adapters/nft.ts, wrapped by NftSync). */
export interface NftBans {
  add(bans: Array<{ target: string; timeoutSeconds: number }>, onProgress?: (done: number, total: number) => void, fresh?: boolean): Promise<void>;
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
  gateway: string | null; // which gateway made it (fleet)
}

/** The first of the IPv4 nets (base and mask as unsigned 32-bit numbers) that holds addr. */
function protectedBy<T extends { base: number; mask: number }>(nets: readonly T[], addr: number): T | undefined {
  for (const n of nets) if ((addr & n.mask) >>> 0 === n.base) return n;
  return undefined;
}

/** Why a ban of `t` would hit this host, its gateways, resolvers or the allow list; undefined if it would not. */
export function whyProtected(t: Cidr, prot: readonly Protected[]): string | undefined {
  for (const p of prot) {
    const inside = contains(p.net, t);
    if (inside) return `it is ${p.why}`;
    if (contains(t, p.net)) return `it covers ${p.net.text}, which is ${p.why}`;
  }
  return undefined;
}

/** The IPv4 protected nets as (base, mask) numbers, for checking packed addresses. */
function v4Nets(prot: readonly Protected[]): Array<{ base: number; mask: number; why: string }> {
  return prot
    .filter((p) => p.net.family === 4)
    .map((p) => {
      const mask = p.net.prefix ? (0xffffffff << (32 - p.net.prefix)) >>> 0 : 0;
      return { base: (p.net.bytes.readUInt32BE(0) & mask) >>> 0, mask, why: p.why };
    });
}

/**
 * Refuses targets that would ban this host, its gateways, resolvers or the
 * allow list: CIDRs, and exact IPv4 addresses given as numbers (a big list).
 */
export function checkProtected(targets: readonly Cidr[], prot: readonly Protected[], v4: ArrayLike<number> = []): void {
  const refuse = (text: string, what: string) =>
    new SentryError('USAGE', `refusing to ban ${text}: ${what}`, 'never-ban and allow entries are never banned; narrow the range or change those lists first');
  for (const t of targets) {
    const what = whyProtected(t, prot);
    if (what) throw refuse(t.text, what);
  }
  const nets = v4Nets(prot);
  for (let i = 0; i < v4.length && nets.length; i++) {
    const hit = protectedBy(nets, v4[i]!);
    if (hit) {
      const n = v4[i]!;
      throw refuse(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`, `it is ${hit.why}`);
    }
  }
}

const UNBAN_BY_HAND: Omit<Ending, 'by'> = { cause: 'unban', why: 'unbanned by hand', line: 'unbanned by hand' };
const UNBAN_ALL: Omit<Ending, 'by'> = { cause: 'unban-all', why: 'unban --all', line: 'unban --all' };

export class BanService {
  readonly table: BanTable;

  constructor(
    private readonly gw: Gateway,
    private readonly history: HistoryStore,
    private readonly nft: NftBans | undefined,
    private readonly gateway: string,
    private readonly effects?: BanEffects,
  ) {
    this.table = new BanTable(gw.obj);
  }

  /** Writes bans into the kernel table in batches (exact addresses) or one by one (CIDRs). */
  private toKernel(reqs: readonly BanRequest[], now: bigint, onProgress?: (stage: string, done: number, total: number) => void, created = now): void {
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
            encodeBan(this.value(r, now, created), vals, j * m.valueSize);
          });
          m.updateBatch(keys, vals, part.length);
          done += part.length;
          onProgress?.('kernel', done, reqs.length);
        }
      } else {
        this.table.addMany(list.map((r) => ({ target: r.target, value: this.value(r, now, created) })));
        done += list.length;
        onProgress?.('kernel', done, reqs.length);
      }
    }
  }

  private record(r: BanRequest, now: number): BanRecord {
    const wall = r.time ?? now;
    return {
      op: 'ban',
      time: wall,
      target: r.target.text,
      ttl: r.ttl,
      expires: r.ttl ? wall + r.ttl * 1000 : null,
      origin: r.origin,
      reason: r.reason,
      by: r.by,
      gateway: this.gateway,
      ...(r.port !== undefined ? { port: r.port } : {}),
      ...(r.proto ? { proto: r.proto } : {}),
      ...(r.kind ? { kind: r.kind } : {}),
    };
  }

  /**
   * Puts bans from the store (or the fleet) back into the kernel with their
   * remaining time, where the kernel does not have them (after a reboot wiped
   * bpffs, or while this gateway was away). Not recorded again.
   */
  async restore(records: readonly BanRecord[], opts: { origin?: Origin; nft?: boolean } = {}): Promise<number> {
    const wall = Date.now();
    const now = kernelClockNs();
    const empty = this.table.size() === 0; // a fresh boot: nothing to look up
    // exact IPv4 addresses (nearly all of a big table) are packed straight into batches
    const v4 = this.gw.obj.map('sentry_bans_v4');
    const keys = Buffer.alloc(records.length * v4.keySize);
    const vals = Buffer.alloc(records.length * v4.valueSize);
    let n4 = 0;
    const others: BanRequest[] = [];
    const forNft: Array<{ target: string; timeoutSeconds: number }> = [];
    for (const b of records) {
      if (b.expires !== null && b.expires <= wall) continue;
      let target: Cidr;
      try {
        target = parseCidr(b.target);
      } catch {
        continue;
      }
      if (!empty && this.table.get(target)) continue;
      const req = this.fromRecord(b, target, wall, opts.origin);
      if (opts.nft !== false) forNft.push({ target: target.text, timeoutSeconds: req.ttl });
      if (target.family === 4 && target.prefix === 32) {
        target.bytes.copy(keys, n4 * v4.keySize);
        encodeBan(this.value(req, now), vals, n4 * v4.valueSize);
        n4++;
      } else others.push(req);
    }
    const CHUNK = 65536;
    for (let i = 0; i < n4; i += CHUNK) {
      const c = Math.min(CHUNK, n4 - i);
      v4.updateBatch(keys.subarray(i * v4.keySize, (i + c) * v4.keySize), vals.subarray(i * v4.valueSize, (i + c) * v4.valueSize), c);
    }
    this.toKernel(others, now);
    if (forNft.length) await this.nft?.add(forNft);
    return n4 + others.length;
  }

  /**
   * Restore into an EMPTY table (a fresh boot) from the ordered ban history, a
   * chunk at a time: the kernel writes of one chunk run on a worker thread
   * while the next chunk is parsed. A later record of a target wins, as in a
   * replay. Returns how many bans are in force afterwards (with any the XDP
   * program made meanwhile, which the restore leaves alone). `foreign: false`
   * leaves out the bans other gateways made (a gateway that does not follow
   * the fleet); a ban of anything in `protect` (the allow and never-ban lists
   * as they are now) is left out and passed to `refused`.
   */
  async restoreStream(
    stream: AsyncIterable<ReadonlyArray<BanRecord | UnbanRecord> | PackedBans>,
    opts: { foreign?: boolean; protect?: readonly Protected[]; refused?: (target: string, why: string) => void } = {},
  ): Promise<number> {
    const foreign = (gateway: string | undefined) => !!gateway && gateway !== this.gateway;
    const skipForeign = opts.foreign === false;
    const protect = opts.protect ?? [];
    const nets4 = v4Nets(protect); // for the packed records
    const refuse = (target: string, why: string) => opts.refused?.(target, why);
    const v4 = this.gw.obj.map('sentry_bans_v4');
    const F = Layout.sx_ban.fields;
    // restored entries are stamped as made just before the restore began: an
    // entry made after that is one the XDP program made meanwhile, and stays
    const start = kernelClockNs();
    const stamp = start - 1n;
    const stampLo = Number(stamp & 0xffffffffn);
    const stampHi = Number(stamp >> 32n);
    let pending: Promise<unknown> = Promise.resolve();
    for await (const chunk of stream) {
      const wall = Date.now();
      const now = kernelClockNs();
      const nowNs = Number(now);
      const size = isPacked(chunk) ? chunk.count : chunk.length;
      const keys = Buffer.alloc(size * v4.keySize);
      const vals = Buffer.alloc(size * v4.valueSize);
      let n4 = 0;
      // the bulk of a big table, plain IPv4 bans: packed straight into the batch, no objects on the way
      const put = (a: number, b: number, c: number, d: number, expires: number, port: number, proto: number, origin: number) => {
        const k = n4 * v4.keySize;
        keys[k] = a;
        keys[k + 1] = b;
        keys[k + 2] = c;
        keys[k + 3] = d;
        const v = n4 * v4.valueSize;
        // nanoseconds as doubles: exact below 2^53 (104 days of uptime), off by a few ns after
        const ns = expires ? nowNs + Math.max(1, Math.ceil((expires - wall) / 1000)) * 1e9 : 0;
        vals.writeUInt32LE(ns % 0x100000000, v + F.expires_ns[0]);
        vals.writeUInt32LE(Math.floor(ns / 0x100000000), v + F.expires_ns[0] + 4);
        vals.writeUInt32LE(stampLo, v + F.created_ns[0]);
        vals.writeUInt32LE(stampHi, v + F.created_ns[0] + 4);
        vals.writeUInt16LE(port, v + F.port[0]);
        vals[v + F.proto[0]] = proto;
        vals[v + F.origin[0]] = origin;
        n4++;
      };
      const others: BanRequest[] = [];
      const gone: Cidr[] = [];
      if (isPacked(chunk)) {
        const { buf } = chunk;
        const fleet = chunk.gateways.map(foreign);
        for (let i = 0, at = chunk.offset; i < chunk.count; i++, at += PACKED_RECORD) {
          const expires = buf.readDoubleLE(at + PR.expires);
          if (expires && expires <= wall) continue;
          const other = fleet[buf.readUInt16LE(at + PR.gateway)];
          if (other && skipForeign) continue;
          if (nets4.length) {
            const hit = protectedBy(nets4, buf.readUInt32BE(at));
            if (hit) {
              refuse(`${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`, `it is ${hit.why}`);
              continue;
            }
          }
          const origin = other ? KernelOrigin.FLEET : buf[at + PR.origin]!;
          put(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!, expires, buf.readUInt16LE(at + PR.port), buf[at + PR.proto]!, origin);
        }
      } else {
        const last = new Map<string, BanRecord | UnbanRecord>();
        for (const r of chunk) if (typeof r?.target === 'string') last.set(r.target, r);
        for (const r of last.values()) {
          const live = r.op === 'ban' && (r.expires === null || r.expires > wall) && !(skipForeign && foreign(r.gateway));
          const q = live ? DOTTED_QUAD.exec(r.target) : null;
          if (q && r.op === 'ban') {
            const hit = nets4.length ? protectedBy(nets4, ((+q[1]! << 24) | (+q[2]! << 16) | (+q[3]! << 8) | +q[4]!) >>> 0) : undefined;
            if (hit) {
              refuse(r.target, `it is ${hit.why}`);
              continue;
            }
            const origin = ORIGIN_CODE[foreign(r.gateway) ? 'fleet' : r.origin];
            put(
              Number(q[1]),
              Number(q[2]),
              Number(q[3]),
              Number(q[4]),
              r.expires ?? 0,
              r.port ?? 0,
              r.proto === 'tcp' ? 6 : r.proto === 'udp' ? 17 : 0,
              origin,
            );
            continue;
          }
          let target: Cidr;
          try {
            target = parseCidr(r.target);
          } catch {
            continue;
          }
          if (!live || r.op !== 'ban') {
            gone.push(target);
            continue;
          }
          const why = whyProtected(target, protect);
          if (why) {
            refuse(r.target, why);
            gone.push(target); // an earlier chunk may have it
            continue;
          }
          others.push(this.fromRecord(r, target, wall));
        }
      }
      await pending; // the previous chunk is in: its targets may be unbanned by this one
      for (const t of gone) {
        const cur = this.table.get(t);
        if (cur && cur.createdNs <= stamp) this.table.remove(t);
      }
      this.toKernel(others, now, undefined, stamp);
      pending = n4 ? v4.updateBatchAsync(keys.subarray(0, n4 * v4.keySize), vals.subarray(0, n4 * v4.valueSize), n4) : Promise.resolve();
    }
    await pending;
    return this.table.size();
  }

  private fromRecord(b: BanRecord, target: Cidr, wall: number, origin?: Origin): BanRequest {
    return {
      target,
      ttl: b.expires === null ? 0 : Math.max(1, Math.ceil((b.expires - wall) / 1000)),
      reason: b.reason,
      origin: origin ?? (b.gateway && b.gateway !== this.gateway ? 'fleet' : b.origin),
      by: b.by,
      ...(b.port !== undefined ? { port: b.port } : {}),
      ...(b.proto ? { proto: b.proto } : {}),
    };
  }

  /**
   * Manual and imported bans. History first: a command killed half-way leaves
   * the store ahead of the kernel, and the daemon's restore puts in the rest.
   */
  async ban(reqs: readonly BanRequest[], onProgress?: (stage: string, done: number, total: number) => void): Promise<void> {
    if (!reqs.length) return;
    this.history.record(reqs.map((r) => this.record(r, Date.now())));
    const renewed = new Set(reqs.filter((r) => this.table.get(r.target)).map((r) => r.target.text));
    this.toKernel(reqs, kernelClockNs(), onProgress);
    await this.elsewhere(reqs, onProgress, renewed);
  }

  /**
   * The one place a ban begins, once it is in the kernel table (the XDP program
   * makes automatic ones itself, with the TTL it decided): the journal or
   * Redis, nft, and the hooks of an automatic ban.
   */
  async began(reqs: readonly BanRequest[], onProgress?: (stage: string, done: number, total: number) => void): Promise<void> {
    if (!reqs.length) return;
    this.history.record(reqs.map((r) => this.record(r, Date.now())));
    await this.elsewhere(reqs, onProgress);
  }

  /** nft (`renewed`: targets that were banned already, whose nft timeout is replaced), and the hooks of an automatic ban. */
  private async elsewhere(
    reqs: readonly BanRequest[],
    onProgress?: (stage: string, done: number, total: number) => void,
    renewed?: ReadonlySet<string>,
  ): Promise<void> {
    const progress = onProgress && ((d: number, t: number) => onProgress('nft', d, t));
    const elem = (r: BanRequest) => ({ target: r.target.text, timeoutSeconds: r.ttl });
    if (renewed) {
      await this.nft?.add(reqs.filter((r) => !renewed.has(r.target.text)).map(elem), progress, true);
      await this.nft?.add(reqs.filter((r) => renewed.has(r.target.text)).map(elem), progress);
    } else await this.nft?.add(reqs.map(elem), progress);
    for (const r of reqs) this.effects?.began({ target: r.target.text, origin: r.origin, port: r.port, proto: r.proto });
  }

  /**
   * The one place a ban ends, once it is out of the kernel table (expiry and
   * eviction take it out in the kernel sweep; unban below): the journal or
   * Redis, nft, the hosts.deny line, UNBAN_CMD and the log line.
   */
  async ended(gone: readonly EndedBan[], how: Ending, nft: 'remove' | 'flush' | 'none' = 'remove'): Promise<void> {
    if (!gone.length) return;
    const wall = Date.now();
    this.history.record(
      gone.map((g) => ({ op: 'unban' as const, time: wall, target: g.target, why: how.why, ...(how.by ? { by: how.by } : {}), gateway: this.gateway })),
    );
    if (nft === 'flush') await this.nft?.flush();
    else if (nft === 'remove') await this.nft?.remove(gone.map((g) => g.target));
    this.effects?.ended(gone, how);
  }

  private value(r: BanRequest, now: bigint, created = now) {
    return {
      expiresNs: r.ttl ? now + BigInt(r.ttl) * 1_000_000_000n : 0n,
      createdNs: created,
      drops: 0n,
      port: r.port ?? 0,
      proto: r.proto === 'tcp' ? 6 : r.proto === 'udp' ? 17 : 0,
      kind: 0,
      origin: ORIGIN_CODE[r.origin],
    };
  }

  /** Removes bans; returns the targets that were banned. */
  async unban(targets: readonly Cidr[], by: string, how: Omit<Ending, 'by'> = UNBAN_BY_HAND): Promise<string[]> {
    const gone: EndedBan[] = [];
    for (const t of targets) {
      const value = this.table.get(t);
      if (value && this.table.remove(t)) gone.push({ target: t.text, value });
    }
    await this.ended(gone, { ...how, by });
    return gone.map((g) => g.target);
  }

  /**
   * Fleet bans this gateway still holds whose target the fleet no longer bans
   * (`live`: the fleet-wide table of bans in force): lifted on another gateway
   * while this one was away. They end here as a fleet unban would have.
   */
  async liftStaleFleet(live: ReadonlySet<string>): Promise<string[]> {
    const stale = this.table.entries().filter((e) => e.value.origin === KernelOrigin.FLEET && !live.has(e.target));
    for (const e of stale) this.table.remove(parseEntry(e));
    await this.ended(stale, {
      cause: 'fleet',
      why: 'lifted on the fleet while this gateway was away',
      line: 'lifted on the fleet while this gateway was away',
      by: 'fleet',
    });
    return stale.map((e) => e.target);
  }

  /** `unban --all`, and `detach --all` (whose nft table goes as a whole). */
  async unbanAll(by: string, how: Omit<Ending, 'by'> = UNBAN_ALL): Promise<string[]> {
    const entries: BanEntry[] = this.table.entries();
    if (how.cause !== 'detach') for (const e of entries) this.table.remove(parseEntry(e)); // detach: the maps go as a whole
    await this.ended(entries, { ...how, by }, how.cause === 'detach' ? 'none' : 'flush');
    return entries.map((e) => e.target);
  }

  /** Every ban in force, joined with what the journal knows. */
  async list(): Promise<ListEntry[]> {
    const now = kernelClockNs();
    const wall = Date.now();
    const meta = new Map((await this.history.liveBans(wall)).map((b) => [b.target, b]));
    const perCpu = this.table.dropCounts();
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
        drops: Number(v.drops + (e.map.startsWith('sentry_ban_cidr') ? 0n : (perCpu.get(e.target) ?? 0n))),
        reason: m?.reason ?? (probe ? `scan: ${kindKey(v.kind)}` : ''),
        probe,
        by: m?.by ?? (origin === 'auto' ? 'sentry-xdp' : null),
        gateway: m?.gateway ?? null,
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
