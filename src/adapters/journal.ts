/**
 * The local ban journal: an append-only file of JSON lines under the state
 * directory. It keeps what the kernel table cannot hold (reason, who, wall-clock
 * times) and lets `list` and a restart know them.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { packBans, unpackBans, type UnpackedChunk } from '../core/ban-pack.js';

export type Origin = 'auto' | 'manual' | 'imported' | 'fleet';

export interface BanRecord {
  op: 'ban';
  time: number; // wall ms
  target: string;
  ttl: number; // seconds, 0 = permanent
  expires: number | null; // wall ms
  origin: Origin;
  reason: string;
  by: string;
  port?: number;
  proto?: string;
  kind?: string;
  gateway?: string; // which gateway made it
}

export interface UnbanRecord {
  op: 'unban';
  time: number;
  target: string;
  why: string;
  by?: string;
  gateway?: string;
}

export type JournalRecord = BanRecord | UnbanRecord;

export interface ReplayResult {
  bans: Map<string, BanRecord>; // the latest ban of each target not unbanned since
  errors: Array<{ line: number; message: string }>;
  lines: number;
}

export class BanJournal {
  readonly file: string;

  readonly snapFile: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'bans.jsonl');
    this.snapFile = join(dir, 'bans.snap');
  }

  append(recs: readonly JournalRecord[]): void {
    if (!recs.length) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    appendFileSync(this.file, recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }

  /** Replays the journal; a corrupt or truncated line is reported with its number and skipped. */
  replay(): ReplayResult {
    const bans = new Map<string, BanRecord>();
    const errors: ReplayResult['errors'] = [];
    if (!existsSync(this.file)) return { bans, errors, lines: 0 };
    const lines = readFileSync(this.file, 'utf8').split('\n');
    let n = 0;
    lines.forEach((text, i) => {
      if (!text.trim()) return;
      n++;
      let r: JournalRecord;
      try {
        r = JSON.parse(text) as JournalRecord;
      } catch {
        errors.push({ line: i + 1, message: 'not valid JSON (truncated or corrupt)' });
        return;
      }
      if (r?.op === 'ban' && typeof r.target === 'string') bans.set(r.target, r);
      else if (r?.op === 'unban' && typeof r.target === 'string') bans.delete(r.target);
      else errors.push({ line: i + 1, message: 'not a ban or unban record' });
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
    try {
      for (let i = 0; i < live.length; i += SNAP_CHUNK) writeSync(fd, live.slice(i, i + SNAP_CHUNK).map((r) => JSON.stringify(r) + '\n').join(''));
      // what the snapshot stands for: these bytes, not whatever another process appends after the rename
      const st = fstatSync(fd);
      written = { size: st.size, ino: st.ino, tail: readTail(tmp, st.size) };
    } finally {
      closeSync(fd);
    }
    rmSync(this.snapFile, { force: true }); // the old one describes the old file
    renameSync(tmp, this.file);
    this.writeSnapshot(live, written);
    return true;
  }

  /** bans.snap for the journal just written (every record in it live, one per target). */
  private writeSnapshot(live: readonly BanRecord[], st: { size: number; ino: number; tail: string }): void {
    const meta: SnapMeta = { covered: st.size, lines: live.length, ino: st.ino, tail: st.tail, bans: live.length };
    const parts: Buffer[] = [];
    const metaBuf = Buffer.from(JSON.stringify(meta));
    parts.push(u32(metaBuf.length), metaBuf);
    for (let i = 0; i < live.length; i += SNAP_CHUNK) {
      const chunk = packBans(live.slice(i, i + SNAP_CHUNK));
      parts.push(u32(chunk.length), chunk);
    }
    const tmp = `${this.snapFile}.tmp`;
    writeFileSync(tmp, Buffer.concat(parts), { mode: 0o640 });
    renameSync(tmp, this.snapFile);
  }

  private snapMeta(): SnapMeta | undefined {
    try {
      const fd = openSync(this.snapFile, 'r');
      try {
        const head = Buffer.alloc(4);
        readSync(fd, head, 0, 4, 0);
        const meta = Buffer.alloc(Math.min(head.readUInt32LE(0), 4096));
        readSync(fd, meta, 0, meta.length, 4);
        return JSON.parse(meta.toString()) as SnapMeta;
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
  }

  /**
   * The packed bans of bans.snap and where the journal's later lines start,
   * if bans.snap still describes the start of the journal (same file, same
   * bytes where it ends); undefined when there is none. Throws with the
   * reason if it is there but cannot be used.
   */
  readSnapshot(): { chunks: UnpackedChunk[]; covered: number; lines: number } | undefined {
    if (!existsSync(this.snapFile)) return undefined;
    const buf = readFileSync(this.snapFile);
    const mlen = buf.length >= 4 ? buf.readUInt32LE(0) : 0;
    let meta: SnapMeta;
    try {
      meta = JSON.parse(buf.toString('utf8', 4, 4 + mlen)) as SnapMeta;
    } catch {
      throw new Error('its header is unreadable');
    }
    const st = existsSync(this.file) ? statSync(this.file) : undefined;
    if (!st || st.ino !== meta.ino || st.size < meta.covered || readTail(this.file, meta.covered) !== meta.tail) {
      throw new Error('bans.jsonl was replaced or rewritten since');
    }
    const chunks: UnpackedChunk[] = [];
    for (let at = 4 + mlen; at < buf.length; ) {
      const len = buf.readUInt32LE(at);
      chunks.push(unpackBans(buf.subarray(at + 4, at + 4 + len)));
      at += 4 + len;
    }
    return { chunks, covered: meta.covered, lines: meta.lines };
  }
}

const SNAP_CHUNK = 65536;

interface SnapMeta {
  covered: number; // bytes of bans.jsonl that the snapshot stands for
  lines: number; // lines in them
  ino: number;
  tail: string; // the last bytes of them (base64), to tell a rewritten journal
  bans: number;
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
