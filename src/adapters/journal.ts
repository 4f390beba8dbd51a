/**
 * The local ban journal: an append-only file of JSON lines under the state
 * directory. It keeps what the kernel table cannot hold (reason, who, wall-clock
 * times) and lets `list` and a restart know them.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { packBans, unpackBans, type UnpackedChunk } from '../core/ban-pack.js';
import { check, encodeRecord, JournalRecordSchema, type BanRecord, type JournalRecord } from '../core/records.js';

export type { BanRecord, JournalRecord, Origin, UnbanRecord } from '../core/records.js';

/** A write that stopped part way (a full disk): `stored` of `total` lines are in the file, whole. */
export class PartialWrite extends Error {
  constructor(
    readonly file: string,
    readonly stored: number,
    readonly total: number,
    readonly errno: string | undefined,
  ) {
    super(
      `${file}: stored ${stored} of ${total} record(s); ${errno === 'ENOSPC' ? 'the disk is full' : errno === 'EDQUOT' ? 'the disk quota is exceeded' : (errno ?? 'write failed')}`,
    );
  }
}

/** Lines per write: what a full disk can cost is one such batch, never a line cut in two. */
const LINES_PER_WRITE = 256;

/**
 * Appends lines to a file, each batch as one buffer. On a short write (a
 * full disk) the file is cut back to where the batch began: a half line would
 * swallow the next record appended after it. Throws PartialWrite.
 */
export function appendLines(file: string, lines: readonly string[]): void {
  if (!lines.length) return;
  let stored = 0;
  let fd: number | undefined;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o750 });
    fd = openSync(file, 'a', 0o640);
    for (let i = 0; i < lines.length; i += LINES_PER_WRITE) {
      const part = lines.slice(i, i + LINES_PER_WRITE);
      const buf = Buffer.from(part.join('\n') + '\n');
      const before = fstatSync(fd).size;
      try {
        for (let off = 0; off < buf.length;) {
          const n = writeSync(fd, buf, off);
          if (n <= 0) throw Object.assign(new Error('no progress'), { code: 'ENOSPC' });
          off += n;
        }
      } catch (e) {
        ftruncateSync(fd, before);
        throw e;
      }
      stored += part.length;
    }
  } catch (e) {
    throw new PartialWrite(file, stored, lines.length, (e as NodeJS.ErrnoException).code);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface ReplayResult {
  bans: Map<string, BanRecord>; // the latest ban of each target not unbanned since
  errors: Array<{ line: number; message: string }>;
  lines: number;
}

/** A chunk of bans.snap: its bans, or why it cannot be used and the lines of bans.jsonl it stands for. */
export type SnapChunk = { ok: UnpackedChunk } | { bad: string; from: number; to: number; line: number };

export class BanJournal {
  readonly file: string;

  readonly snapFile: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'bans.jsonl');
    this.snapFile = join(dir, 'bans.snap');
  }

  /** Checked with the schema every reader uses; throws PartialWrite (full disk) with what was stored. */
  append(recs: readonly JournalRecord[]): void {
    appendLines(
      this.file,
      recs.map((r) => encodeRecord(JournalRecordSchema, r)),
    );
  }

  /** Replays the journal; a corrupt, truncated or impossible line is reported with its number and skipped. */
  replay(): ReplayResult {
    const bans = new Map<string, BanRecord>();
    const errors: ReplayResult['errors'] = [];
    if (!existsSync(this.file)) return { bans, errors, lines: 0 };
    const lines = readFileSync(this.file, 'utf8').split('\n');
    let n = 0;
    lines.forEach((text, i) => {
      if (!text.trim()) return;
      n++;
      const c = check(JournalRecordSchema, text);
      if (!c.ok) errors.push({ line: i + 1, message: c.why });
      else if (c.value.op === 'ban') bans.set(c.value.target, c.value);
      else bans.delete(c.value.target);
    });
    return { bans, errors, lines: n };
  }

  /**
   * Rewrites the journal with only the live bans once it has grown past
   * maxBytes and past twice what its last compaction left (so a table that is
   * large by itself is not rewritten at every start). Writes the sidecar
   * bans.snap: the same bans packed, for a fast restore.
   */
  compactIfLarger(maxBytes: number, now: number): boolean {
    if (!existsSync(this.file)) return false;
    const size = statSync(this.file).size;
    if (size <= maxBytes || size <= 2 * (this.snapMeta()?.covered ?? 0)) return false;
    const { bans } = this.replay();
    const live = [...bans.values()].filter((b) => b.expires === null || b.expires > now);
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o640);
    let written: { size: number; ino: number; tail: string };
    const ranges: Array<{ from: number; to: number; line: number }> = [];
    try {
      // chunk by chunk as in bans.snap: a chunk of it that goes bad is read from these bytes instead
      for (let i = 0, at = 0; i < live.length; i += SNAP_CHUNK) {
        const buf = Buffer.from(
          live
            .slice(i, i + SNAP_CHUNK)
            .map((r) => JSON.stringify(r) + '\n')
            .join(''),
        );
        for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
        ranges.push({ from: at, to: at + buf.length, line: i });
        at += buf.length;
      }
      // what the snapshot stands for: these bytes, not whatever another process appends after the rename
      const st = fstatSync(fd);
      written = { size: st.size, ino: st.ino, tail: readTail(tmp, st.size) };
    } catch (e) {
      rmSync(tmp, { force: true }); // a full disk: the journal stays as it was
      throw e;
    } finally {
      closeSync(fd);
    }
    rmSync(this.snapFile, { force: true }); // the old one describes the old file
    renameSync(tmp, this.file);
    this.writeSnapshot(live, written, ranges);
    return true;
  }

  /** bans.snap for the journal just written (every record in it live, one per target). */
  private writeSnapshot(
    live: readonly BanRecord[],
    st: { size: number; ino: number; tail: string },
    ranges: ReadonlyArray<{ from: number; to: number; line: number }>,
  ): void {
    const packed = ranges.map((r, i) => packBans(live.slice(i * SNAP_CHUNK, (i + 1) * SNAP_CHUNK)));
    const meta: SnapMeta = {
      v: SNAP_VERSION,
      covered: st.size,
      lines: live.length,
      ino: st.ino,
      tail: st.tail,
      bans: live.length,
      chunks: ranges.map((r, i) => ({ ...r, len: packed[i]!.length })),
    };
    const metaBuf = Buffer.from(JSON.stringify(meta));
    const tmp = `${this.snapFile}.tmp`;
    try {
      writeFileSync(tmp, Buffer.concat([Buffer.from(SNAP_MAGIC, 'latin1'), u32(metaBuf.length), metaBuf, sum(metaBuf), ...packed]), { mode: 0o640 });
      renameSync(tmp, this.snapFile);
    } catch (e) {
      rmSync(tmp, { force: true }); // no snapshot: the next restore reads the journal whole
      throw e;
    }
  }

  /** The header of bans.snap, checked; throws with the reason it cannot be used. */
  private readMeta(buf: Buffer): { meta: SnapMeta; body: number } {
    const magic = buf.toString('latin1', 0, 4);
    if (magic !== SNAP_MAGIC) throw new Error(/^SXJ/.test(magic) ? `an older format (${magic})` : 'an older format, or its header is unreadable');
    const mlen = buf.length >= 8 ? buf.readUInt32LE(4) : 0;
    const metaBuf = buf.subarray(8, 8 + mlen);
    if (mlen > buf.length || !sum(metaBuf).equals(buf.subarray(8 + mlen, 8 + mlen + SUM))) throw new Error('its header fails its checksum');
    const meta = JSON.parse(metaBuf.toString('utf8')) as SnapMeta;
    if (meta.v !== SNAP_VERSION || !Array.isArray(meta.chunks)) throw new Error('its header is of another version');
    return { meta, body: 8 + mlen + SUM };
  }

  private snapMeta(): SnapMeta | undefined {
    try {
      const fd = openSync(this.snapFile, 'r');
      try {
        const head = Buffer.alloc(8);
        readSync(fd, head, 0, 8, 0);
        const len = 8 + Math.min(head.readUInt32LE(4), 1 << 20) + SUM;
        const buf = Buffer.alloc(len);
        readSync(fd, buf, 0, len, 0);
        return this.readMeta(buf).meta;
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
  }

  /**
   * The chunks of bans.snap and where the journal's later lines start, if
   * bans.snap still describes the start of the journal (same file, same bytes
   * where it ends); undefined when there is none. Throws with the reason if it
   * is there but cannot be used at all. A chunk that fails its checksum comes
   * back as the range of bans.jsonl it stands for.
   */
  readSnapshot(): { chunks: SnapChunk[]; covered: number; lines: number } | undefined {
    if (!existsSync(this.snapFile)) return undefined;
    const buf = readFileSync(this.snapFile);
    let head: { meta: SnapMeta; body: number };
    try {
      head = this.readMeta(buf);
    } catch (e) {
      throw new Error(e instanceof SyntaxError ? 'its header is unreadable' : (e as Error).message);
    }
    const { meta } = head;
    const st = existsSync(this.file) ? statSync(this.file) : undefined;
    if (!st || st.ino !== meta.ino || st.size < meta.covered || readTail(this.file, meta.covered) !== meta.tail) {
      throw new Error('bans.jsonl was replaced or rewritten since');
    }
    const chunks: SnapChunk[] = [];
    let at = head.body;
    for (const c of meta.chunks) {
      try {
        if (at + c.len > buf.length) throw new Error('it is cut short');
        chunks.push({ ok: unpackBans(buf.subarray(at, at + c.len)) });
      } catch (e) {
        chunks.push({ bad: (e as Error).message, from: c.from, to: c.to, line: c.line });
      }
      at += c.len;
    }
    return { chunks, covered: meta.covered, lines: meta.lines };
  }
}

const SNAP_CHUNK = 65536;
/** bans.snap: "SXJ2" | u32 header length | header (JSON) | sum of the header | chunks (src/core/ban-pack.ts, each with its sum). */
const SNAP_MAGIC = 'SXJ2';
const SNAP_VERSION = 2;
const SUM = 16;

interface SnapMeta {
  v: number;
  covered: number; // bytes of bans.jsonl that the snapshot stands for
  lines: number; // lines in them
  ino: number;
  tail: string; // the last bytes of them (base64), to tell a rewritten journal
  bans: number;
  /** Each chunk: its length in bans.snap, and the bytes (from, to) and first line (0-based) of bans.jsonl it packs. */
  chunks: Array<{ len: number; from: number; to: number; line: number }>;
}

function sum(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest().subarray(0, SUM);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** The 64 bytes before `end` in a file, base64. */
function readTail(file: string, end: number): string {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(Math.min(64, end));
    readSync(fd, b, 0, b.length, end - b.length);
    return b.toString('base64');
  } finally {
    closeSync(fd);
  }
}
