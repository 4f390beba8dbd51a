/**
 * A compact binary form of a table of bans in force, so that a restart can
 * read a million bans in a few large strings instead of a million small ones.
 * Plain IPv4 bans (nearly all of a big table) become fixed-size records with
 * just what the kernel needs; everything else (IPv6, networks) stays JSON.
 *
 * Layout, little-endian:
 *   "SXB2" | u32 n | u32 trailer length | sum[16] | n x record | trailer (JSON)
 *   sum:     the first 16 bytes of the SHA-256 of everything after it: a chunk with a flipped
 *            byte is refused whole (its bans are read from the log instead), never half-believed
 *   record:  address[4] | expires, wall ms, f64 (0 = permanent) | port u16 | proto u8 | origin u8 | gateway u16
 *   trailer: { "gateways": [names, indexed by the records], "others": [BanRecord, ...] }
 * Origins are the kernel's codes (src/core/abi.ts). "SXB1" chunks (no sum) are refused.
 */
import { createHash } from 'node:crypto';
import { DOTTED_QUAD } from './addr.js';
import { ORIGIN_CODE, ORIGIN_NAME } from './abi.js';
import { BanRecordSchema, check, type BanRecord } from './records.js';

const MAGIC = 'SXB2';
const SUM = 16;
const HEAD = 12 + SUM;
export const PACKED_RECORD = 18;
/** Offsets inside a record. */
export const PR = { addr: 0, expires: 4, port: 12, proto: 14, origin: 15, gateway: 16 } as const;

/** Plain IPv4 bans as packed records, read in place. */
export interface PackedBans {
  readonly packed: true;
  readonly buf: Buffer;
  readonly offset: number; // of the first record
  readonly count: number;
  readonly gateways: readonly string[]; // '' = none recorded
}

export interface UnpackedChunk {
  v4: PackedBans;
  others: BanRecord[];
}

export function isPacked(x: unknown): x is PackedBans {
  return typeof x === 'object' && x !== null && (x as PackedBans).packed === true;
}

/**
 * Plain IPv4 bans packed one at a time into a block of records, for the
 * snapshot writer and for a restore that reads the hash whole (a million
 * records become a few buffers at once, not a million objects kept alive).
 */
export class BanPacker {
  private body = Buffer.alloc(0); // allocated at the first add of each block
  private n = 0;
  private gateways: string[] = [''];
  private gwIndex = new Map<string, number>([['', 0]]);

  constructor(private readonly capacity: number) {}

  get count(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n >= this.capacity;
  }

  /** Packs a ban if it is a plain IPv4 one; false: the caller keeps it as a record. A full block must be taken first. */
  add(b: BanRecord): boolean {
    if (this.full) throw new Error('BanPacker: the block is full; take() it first');
    const q = DOTTED_QUAD.exec(b.target);
    const origin = (ORIGIN_CODE as Record<string, number | undefined>)[b.origin];
    if (!q || origin === undefined) return false;
    const gw = b.gateway ?? '';
    let g = this.gwIndex.get(gw);
    if (g === undefined) {
      if (this.gateways.length > 0xffff) return false;
      g = this.gateways.length;
      this.gateways.push(gw);
      this.gwIndex.set(gw, g);
    }
    if (!this.body.length) this.body = Buffer.alloc(this.capacity * PACKED_RECORD);
    const body = this.body;
    const at = this.n * PACKED_RECORD;
    body[at] = Number(q[1]);
    body[at + 1] = Number(q[2]);
    body[at + 2] = Number(q[3]);
    body[at + 3] = Number(q[4]);
    body.writeDoubleLE(b.expires ?? 0, at + PR.expires);
    body.writeUInt16LE(b.port ?? 0, at + PR.port);
    body[at + PR.proto] = b.proto === 'tcp' ? 6 : b.proto === 'udp' ? 17 : 0;
    body[at + PR.origin] = origin;
    body.writeUInt16LE(g, at + PR.gateway);
    this.n++;
    return true;
  }

  /** The records packed so far, read in place; the packer starts a new block. */
  take(): PackedBans {
    const out: PackedBans = { packed: true, buf: this.body, offset: 0, count: this.n, gateways: this.gateways };
    this.body = Buffer.alloc(0);
    this.n = 0;
    this.gateways = [''];
    this.gwIndex = new Map([['', 0]]);
    return out;
  }
}

/** Packs bans (a record per target; the caller has dropped what lapsed). */
export function packBans(bans: readonly BanRecord[]): Buffer {
  const packer = new BanPacker(bans.length);
  const others = bans.filter((b) => !packer.add(b));
  const v4 = packer.take();
  const trailer = Buffer.from(JSON.stringify({ gateways: v4.gateways, others }));
  const out = Buffer.concat([Buffer.alloc(HEAD), v4.buf.subarray(0, v4.count * PACKED_RECORD), trailer]);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(v4.count, 4);
  out.writeUInt32LE(trailer.length, 8);
  chunkSum(out).copy(out, 12);
  return out;
}

/** What the sum of a chunk covers: its counts, records and trailer. */
function chunkSum(buf: Buffer): Buffer {
  return createHash('sha256').update(buf.subarray(4, 12)).update(buf.subarray(HEAD)).digest().subarray(0, SUM);
}

/**
 * Reads a chunk written by packBans; throws on anything else, with the reason
 * (the caller reads the log for what the chunk covered). A chunk whose sum
 * matches but holds an impossible record is refused too: that one a writer made.
 */
export function unpackBans(buf: Buffer): UnpackedChunk {
  if (buf.length < HEAD || !buf.toString('latin1', 0, 3).startsWith('SXB')) throw new Error('not a packed ban chunk');
  if (buf.toString('latin1', 0, 4) !== MAGIC) throw new Error(`a packed ban chunk of an older format (${buf.toString('latin1', 0, 4)})`);
  if (!chunkSum(buf).equals(buf.subarray(12, HEAD))) throw new Error('a packed ban chunk fails its checksum');
  const count = buf.readUInt32LE(4);
  const tlen = buf.readUInt32LE(8);
  const tat = HEAD + count * PACKED_RECORD;
  if (tat + tlen !== buf.length) throw new Error('packed ban chunk of the wrong length');
  const t = JSON.parse(buf.toString('utf8', tat)) as { gateways?: unknown; others?: unknown };
  if (!Array.isArray(t.gateways) || !t.gateways.every((g) => typeof g === 'string') || !Array.isArray(t.others)) {
    throw new Error('packed ban chunk without its trailer');
  }
  const others = t.others.map((o) => {
    const c = check(BanRecordSchema, o);
    if (!c.ok) throw new Error(`packed ban chunk with an impossible record (${c.why})`);
    return c.value;
  });
  for (let i = 0, at = HEAD; i < count; i++, at += PACKED_RECORD) {
    const expires = buf.readDoubleLE(at + PR.expires);
    if (!Number.isFinite(expires) || expires < 0 || ORIGIN_NAME[buf[at + PR.origin]!] === undefined || buf.readUInt16LE(at + PR.gateway) >= t.gateways.length) {
      throw new Error(`packed ban chunk with an impossible record (number ${i + 1})`);
    }
  }
  return { v4: { packed: true, buf, offset: HEAD, count, gateways: t.gateways as string[] }, others };
}

/** The records of a chunk as BanRecords again (tests, tools; the restore reads them in place). */
export function* packedRecords(p: PackedBans): Generator<BanRecord> {
  for (let i = 0; i < p.count; i++) {
    const at = p.offset + i * PACKED_RECORD;
    const expires = p.buf.readDoubleLE(at + PR.expires);
    const port = p.buf.readUInt16LE(at + PR.port);
    const proto = p.buf[at + PR.proto];
    const gateway = p.gateways[p.buf.readUInt16LE(at + PR.gateway)] ?? '';
    yield {
      op: 'ban',
      time: 0,
      target: `${p.buf[at]}.${p.buf[at + 1]}.${p.buf[at + 2]}.${p.buf[at + 3]}`,
      ttl: 0,
      expires: expires || null,
      origin: ORIGIN_NAME[p.buf[at + PR.origin]!] ?? 'manual',
      reason: '',
      by: '',
      ...(port ? { port } : {}),
      ...(proto === 6 ? { proto: 'tcp' } : proto === 17 ? { proto: 'udp' } : {}),
      ...(gateway ? { gateway } : {}),
    };
  }
}
